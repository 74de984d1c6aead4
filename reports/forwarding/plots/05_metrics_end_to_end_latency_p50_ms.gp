set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/05_metrics_end_to_end_latency_p50_ms.svg'
set title "End-to-end latency, median"
set xlabel "extra delay on 30% of inter-server messages, uniform up to (ms)"
set ylabel "ms"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/05_metrics_end_to_end_latency_p50_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "forwarding=direct, gap\_detection\_enabled=true", \
     'plots/05_metrics_end_to_end_latency_p50_ms.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "forwarding=direct, gap\_detection\_enabled=false", \
     'plots/05_metrics_end_to_end_latency_p50_ms.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "forwarding=buffered, gap\_detection\_enabled=true", \
     'plots/05_metrics_end_to_end_latency_p50_ms.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "forwarding=buffered, gap\_detection\_enabled=false", \
     'plots/05_metrics_end_to_end_latency_p50_ms.dat' using 1:10:11 with yerrorlines lw 2 pt 7 title "forwarding=queue, gap\_detection\_enabled=true", \
     'plots/05_metrics_end_to_end_latency_p50_ms.dat' using 1:12:13 with yerrorlines lw 2 pt 7 title "forwarding=queue, gap\_detection\_enabled=false"
