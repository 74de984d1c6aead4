set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_metrics_store_requests_per_s.svg'
set title "Store requests per second"
set xlabel "online users (the seed's 1M scaled down)"
set ylabel "requests/s"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set logscale x
plot 'plots/01_metrics_store_requests_per_s.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "all"
