set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/03_metrics_node_load_store_utilization.svg'
set title "Store CPU utilization"
set xlabel "group size (members)"
set ylabel "fraction busy"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set logscale x
set logscale y
plot 'plots/03_metrics_node_load_store_utilization.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "group\_delivery=push, send\_rate\_total\_hz=0.1", \
     'plots/03_metrics_node_load_store_utilization.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "group\_delivery=push, send\_rate\_total\_hz=0.5", \
     'plots/03_metrics_node_load_store_utilization.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "group\_delivery=pull, send\_rate\_total\_hz=0.1", \
     'plots/03_metrics_node_load_store_utilization.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "group\_delivery=pull, send\_rate\_total\_hz=0.5", \
     'plots/03_metrics_node_load_store_utilization.dat' using 1:10:11 with yerrorlines lw 2 pt 7 title "group\_delivery=hybrid, send\_rate\_total\_hz=0.1", \
     'plots/03_metrics_node_load_store_utilization.dat' using 1:12:13 with yerrorlines lw 2 pt 7 title "group\_delivery=hybrid, send\_rate\_total\_hz=0.5"
