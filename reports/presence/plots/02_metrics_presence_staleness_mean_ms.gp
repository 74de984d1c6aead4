set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/02_metrics_presence_staleness_mean_ms.svg'
set title "Staleness of presence users see, mean"
set xlabel "short-list size (contacts pushed; the rest poll every 10 s)"
set ylabel "ms"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/02_metrics_presence_staleness_mean_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "presence\_fanout=all", \
     'plots/02_metrics_presence_staleness_mean_ms.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "presence\_fanout=short\_list"
