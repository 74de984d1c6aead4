set terminal svg size 760,440 dynamic font 'Helvetica,12' background rgb 'white'
set output 'plots/01_metrics_out_of_order_ids.svg'
set title "Ids out of order (a later message with a smaller id)"
set xlabel "send rate per user (messages/s)"
set ylabel "messages"
set grid
set key outside right top
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/01_metrics_out_of_order_ids.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "id\_scheme=snowflake", \
     'plots/01_metrics_out_of_order_ids.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "id\_scheme=timestamp", \
     'plots/01_metrics_out_of_order_ids.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "id\_scheme=sequence"
