set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/01_paired_difference.svg'
set title "Paired difference against snowflake: share of messages minted below the head"
set xlabel "messages per second in the conversation"
set ylabel "difference in share of messages minted below the head (same seeds)"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2 lc rgb 'black'
plot 'plots/01_paired_difference.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "timestamp - snowflake", \
     'plots/01_paired_difference.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "sequence - snowflake"
