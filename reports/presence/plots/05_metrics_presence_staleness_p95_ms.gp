set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/05_metrics_presence_staleness_p95_ms.svg'
set title "Staleness of presence users see, p95"
set xlabel "short-list size (contacts pushed; the rest poll every 10 s)"
set ylabel "ms"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/05_metrics_presence_staleness_p95_ms.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "fan-out to every contact", \
     'plots/05_metrics_presence_staleness_p95_ms.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "short list plus polling"
