set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_paired_difference.svg'
set title "Paired difference against backoff capped at 4 s: p99 delivery to each online recipient (ms)"
set xlabel "the node that crashes"
set ylabel "difference in p99 delivery to each online recipient (ms) (same seeds)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set xtics ("a chat server" 0, "the batch writer" 1, "the queue broker" 2, "the store" 3)
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'
plot 'plots/01_paired_difference.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "backoff capped at 1 s - backoff capped at 4 s"
