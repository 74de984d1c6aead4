set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/02_metrics_offline_delivery_mean_ms.svg'
set title "Time until an offline user holds a message, mean"
set xlabel "background sync interval S (s; 0 = none)"
set ylabel "ms"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/02_metrics_offline_delivery_mean_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "push wakes the app, 0 of pushes lost", \
     'plots/02_metrics_offline_delivery_mean_ms.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "no push wake, 0 of pushes lost", \
     'plots/02_metrics_offline_delivery_mean_ms.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "push wakes the app, 0.5 of pushes lost", \
     'plots/02_metrics_offline_delivery_mean_ms.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "no push wake, 0.5 of pushes lost"
