set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_paired_difference.svg'
set title "Paired difference against direct writes: store requests per second"
set xlabel "flush window T (us)"
set ylabel "difference in store requests per second (same seeds)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'
plot 'plots/01_paired_difference.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "batched writes - direct writes, batches of up to 10, 200 users", \
     'plots/01_paired_difference.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "batched writes - direct writes, batches of up to 10, 2000 users", \
     'plots/01_paired_difference.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "batched writes - direct writes, batches of up to 100, 200 users", \
     'plots/01_paired_difference.dat' using 1:8:9 with yerrorlines lw 2 pt 7 title "batched writes - direct writes, batches of up to 100, 2000 users"
