set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/01_metrics_end_to_end_latency_p95_ms.svg'
set title "End-to-end latency, p95"
set xlabel "server-to-server forwarding"
set ylabel "ms"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set xtics ("direct" 0, "buffered" 1, "queue" 2)
plot 'plots/01_metrics_end_to_end_latency_p95_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "all"
