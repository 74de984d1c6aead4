set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/04_metrics_background_wakes.svg'
set title "Background wakes (push or periodic)"
set xlabel "background sync interval S (s; 0 = none)"
set ylabel "wakes"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/04_metrics_background_wakes.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "push wakes the app, 0 of pushes lost", \
     'plots/04_metrics_background_wakes.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "no push wake, 0 of pushes lost", \
     'plots/04_metrics_background_wakes.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "push wakes the app, 0.5 of pushes lost", \
     'plots/04_metrics_background_wakes.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "no push wake, 0.5 of pushes lost"
