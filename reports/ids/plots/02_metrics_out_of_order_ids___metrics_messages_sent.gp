set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/02_metrics_out_of_order_ids___metrics_messages_sent.svg'
set title "Share of messages minted below their conversation's head (lifted by the store)"
set xlabel "messages per second in the conversation"
set ylabel "share of messages"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/02_metrics_out_of_order_ids___metrics_messages_sent.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "snowflake", \
     'plots/02_metrics_out_of_order_ids___metrics_messages_sent.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "timestamp", \
     'plots/02_metrics_out_of_order_ids___metrics_messages_sent.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "sequence"
