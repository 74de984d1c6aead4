// @ts-check
// Playwright drives Debian's Chromium (/usr/bin/chromium, or $CHROMIUM), headless; it never
// downloads a browser of its own (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 at npm ci). Artefacts
// (screenshots, traces of failures, histories) go to $WEB_TEST_OUT, under the build directory.
import { defineConfig } from '@playwright/test';
import path from 'node:path';

const out = process.env.WEB_TEST_OUT ?? path.resolve('../../out/web-test');

export default defineConfig({
  testDir: '.',
  testMatch: /.*\.spec\.mjs/,
  outputDir: path.join(out, 'test-results'),
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  use: {
    headless: true,
    launchOptions: { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    viewport: { width: 1100, height: 700 },
  },
});
