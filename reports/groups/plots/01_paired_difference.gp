set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_paired_difference.svg'
set title "Paired difference against push: backend messages per sent message"
set xlabel "group size (members)"
set ylabel "difference in backend messages per sent message (same seeds)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set logscale x
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'
plot 'plots/01_paired_difference.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "pull - push, 0.1 group msg/s", \
     'plots/01_paired_difference.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "hybrid - push, 0.1 group msg/s", \
     'plots/01_paired_difference.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "pull - push, 0.5 group msg/s", \
     'plots/01_paired_difference.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "hybrid - push, 0.5 group msg/s", \
     'plots/01_paired_difference.dat' using 1:10:11 with yerrorlines lw 2 pt 7 title "pull - push, 2 group msg/s", \
     'plots/01_paired_difference.dat' using 1:12:13 with yerrorlines lw 2 pt 7 title "hybrid - push, 2 group msg/s"
