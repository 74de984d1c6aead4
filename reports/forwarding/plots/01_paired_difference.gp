set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_paired_difference.svg'
set title "Paired difference against direct: median delivery latency to online recipients (ms)"
set xlabel "extra delay on 30% of inter-server messages, uniform up to (ms)"
set ylabel "difference in median delivery latency to online recipients (ms) (same seeds)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'
plot 'plots/01_paired_difference.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "buffered - direct, gap detection on", \
     'plots/01_paired_difference.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "queue - direct, gap detection on", \
     'plots/01_paired_difference.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "buffered - direct, gap detection off", \
     'plots/01_paired_difference.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "queue - direct, gap detection off"
