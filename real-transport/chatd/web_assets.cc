#include "real-transport/chatd/web_assets.h"

namespace chatlab::real {

const WebAsset* FindWebAsset(std::string_view path) {
  for (const WebAsset& asset : WebAssets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

}  // namespace chatlab::real
