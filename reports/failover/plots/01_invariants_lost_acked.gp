set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/01_invariants_lost_acked.svg'
set title "Acknowledged messages lost"
set xlabel "forwarding design"
set ylabel "messages"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set xtics ("direct" 0, "buffered" 1, "queue" 2)
plot 'plots/01_invariants_lost_acked.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "client\_retry\_max\_us=1000000", \
     'plots/01_invariants_lost_acked.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "client\_retry\_max\_us=4000000"
