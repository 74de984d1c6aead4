set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/03_metrics_presence_statuses_per_s.svg'
set title "Statuses sent to viewers per second (push recipients plus polled statuses)"
set xlabel "short-list size (contacts pushed; the rest poll every 10 s)"
set ylabel "statuses/s"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/03_metrics_presence_statuses_per_s.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "fan-out to every contact", \
     'plots/03_metrics_presence_statuses_per_s.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "short list plus polling"
