set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/02_metrics_node_load_server0_utilization_window.svg'
set title "Chat server 0 CPU utilization in the window"
set xlabel "online users (the seed's 1M scaled down)"
set ylabel "fraction busy"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set logscale x
plot 'plots/02_metrics_node_load_server0_utilization_window.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "all"
