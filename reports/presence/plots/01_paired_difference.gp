set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_paired_difference.svg'
set title "Paired difference against fan-out to every contact: presence messages per second"
set xlabel "short-list size (contacts pushed; the rest poll every 10 s)"
set ylabel "difference in presence messages per second (same seeds)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'
plot 'plots/01_paired_difference.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "short list plus polling - fan-out to every contact"
