set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/03_metrics_ack_latency_p50_ms.svg'
set title "Ack latency, median"
set xlabel "flush window T (us)"
set ylabel "ms"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/03_metrics_ack_latency_p50_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "direct writes, batches of up to 10, 200 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "batched writes, batches of up to 10, 200 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "direct writes, batches of up to 10, 2000 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "batched writes, batches of up to 10, 2000 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:10:11 with yerrorlines lw 2 pt 7 title "direct writes, batches of up to 100, 200 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:12:13 with yerrorlines lw 2 pt 7 title "batched writes, batches of up to 100, 200 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:14:15 with yerrorlines lw 2 pt 7 title "direct writes, batches of up to 100, 2000 users", \
     'plots/03_metrics_ack_latency_p50_ms.dat' using 1:16:17 with yerrorlines lw 2 pt 7 title "batched writes, batches of up to 100, 2000 users"
