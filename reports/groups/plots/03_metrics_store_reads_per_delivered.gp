set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/03_metrics_store_reads_per_delivered.svg'
set title "Store reads per delivered message (read amplification) (linear axis: some means are 0)"
set xlabel "group size (members)"
set ylabel "reads"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set logscale x
plot 'plots/03_metrics_store_reads_per_delivered.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "push, 0.1 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "pull, 0.1 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "hybrid, 0.1 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "push, 0.5 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:10:11 with yerrorlines lw 2 pt 7 title "pull, 0.5 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:12:13 with yerrorlines lw 2 pt 7 title "hybrid, 0.5 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:14:15 with yerrorlines lw 2 pt 7 title "push, 2 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:16:17 with yerrorlines lw 2 pt 7 title "pull, 2 group msg/s", \
     'plots/03_metrics_store_reads_per_delivered.dat' using 1:18:19 with yerrorlines lw 2 pt 7 title "hybrid, 2 group msg/s"
