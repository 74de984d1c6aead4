set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/02_metrics_inter_server_requests_per_s.svg'
set title "Inter-server requests per second"
set xlabel "server-to-server forwarding"
set ylabel "requests/s"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set xtics ("direct" 0, "buffered" 1, "queue" 2)
plot 'plots/02_metrics_inter_server_requests_per_s.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "all"
