set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/05_metrics_end_to_end_latency_p99_ms.svg'
set title "p99 send to first shown"
set xlabel "the node that crashes"
set ylabel "ms"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set xtics ("a chat server" 0, "the batch writer" 1, "the queue broker" 2, "the store" 3)
plot 'plots/05_metrics_end_to_end_latency_p99_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "backoff capped at 4 s", \
     'plots/05_metrics_end_to_end_latency_p99_ms.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "backoff capped at 1 s"
