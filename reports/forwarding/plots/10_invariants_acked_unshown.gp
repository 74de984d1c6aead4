set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/10_invariants_acked_unshown.svg'
set title "Acknowledged messages stored but never shown to a participant (a recipient that never caught up)"
set xlabel "extra delay on 30% of inter-server messages, uniform up to (ms)"
set ylabel "messages"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/10_invariants_acked_unshown.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "direct, gap detection on", \
     'plots/10_invariants_acked_unshown.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "buffered, gap detection on", \
     'plots/10_invariants_acked_unshown.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "queue, gap detection on", \
     'plots/10_invariants_acked_unshown.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "direct, gap detection off", \
     'plots/10_invariants_acked_unshown.dat' using 1:10:11 with yerrorlines lw 2 pt 7 title "buffered, gap detection off", \
     'plots/10_invariants_acked_unshown.dat' using 1:12:13 with yerrorlines lw 2 pt 7 title "queue, gap detection off"
