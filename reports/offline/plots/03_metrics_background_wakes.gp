set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/03_metrics_background_wakes.svg'
set title "Background wakes (push or periodic)"
set xlabel "background sync interval S (s; 0 = none)"
set ylabel "wakes"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/03_metrics_background_wakes.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "push\_loss=0, wake\_on\_push=true", \
     'plots/03_metrics_background_wakes.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "push\_loss=0, wake\_on\_push=false", \
     'plots/03_metrics_background_wakes.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "push\_loss=0.5, wake\_on\_push=true", \
     'plots/03_metrics_background_wakes.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "push\_loss=0.5, wake\_on\_push=false"
