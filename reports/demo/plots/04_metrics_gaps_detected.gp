set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/04_metrics_gaps_detected.svg'
set title "Gaps detected by clients (prev_msg_id)"
set xlabel "protocol.forwarding"
set ylabel "gaps"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set xtics ("direct" 0, "buffered" 1, "queue" 2)
plot 'plots/04_metrics_gaps_detected.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "all"
