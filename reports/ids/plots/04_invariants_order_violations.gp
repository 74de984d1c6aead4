set terminal svg size 820,460 dynamic font 'Helvetica,12' background rgb 'white'
set termoption noenhanced
set output 'plots/04_invariants_order_violations.svg'
set title "Order violations users saw"
set xlabel "messages per second in the conversation"
set ylabel "violations"
set grid
set key below
set datafile missing 'NaN'
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'plots/04_invariants_order_violations.dat' using 1:2:3 with yerrorlines lw 2 pt 7 title "snowflake", \
     'plots/04_invariants_order_violations.dat' using 1:4:5 with yerrorlines lw 2 pt 7 title "timestamp", \
     'plots/04_invariants_order_violations.dat' using 1:6:7 with yerrorlines lw 2 pt 7 title "sequence"
