set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/03_metrics_id_lift_max.svg'
set title "Largest lift: head + 1 - minted id"
set xlabel "messages per second in the conversation"
set ylabel "us (timestamp) / id units (snowflake)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/03_metrics_id_lift_max.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "snowflake", \
     'plots/03_metrics_id_lift_max.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "timestamp", \
     'plots/03_metrics_id_lift_max.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "sequence"
