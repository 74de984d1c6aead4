#!/usr/bin/env python3
"""Checks the presence analysis's model (sim/lab/analyses.cc, Presence) against a Monte Carlo.

A contact alternates online spells Exp(tau_on) and offline spells Exp(tau_off); a viewer polls it
every P at a random phase and sees a change when the state differs from the previous poll's. The
staleness of a seen change is the age of the current spell at the poll. Prints the model's mean,
the Monte Carlo mean and how often the contact changes per poll interval.

  scripts/presence-model.py [P tau_on tau_off]     (default: scenarios/presence.toml, 10 20 10)
"""
import math
import random
import sys


def model(p, tau_on, tau_off, steps=1000):
    """int_0^P v f(v) dv / int_0^P f(v) dv, midpoint rule, as the analysis computes it."""
    pi_on = tau_on / (tau_on + tau_off)
    pi_off = 1 - pi_on
    rate = 1 / tau_on + 1 / tau_off
    num = den = 0.0
    for k in range(steps):
        v = p * (k + 0.5) / steps
        mix = math.exp(-(p - v) * rate)
        f = (math.exp(-v / tau_on) * (pi_off + pi_on * mix) +
             math.exp(-v / tau_off) * (pi_on + pi_off * mix))
        num += v * f
        den += f
    return num / den


def monte_carlo(p, tau_on, tau_off, contacts=20000, polls=20, seed=1):
    rng = random.Random(seed)
    total = 0.0
    seen = 0
    for _ in range(contacts):
        online = rng.random() < tau_on / (tau_on + tau_off)  # the stationary state
        spell_start = 0.0
        spell_end = rng.expovariate(1 / (tau_on if online else tau_off))
        t = rng.uniform(0, p)  # the viewer's first poll
        previous = None
        for _ in range(polls):
            while spell_end <= t:
                online = not online
                spell_start = spell_end
                spell_end += rng.expovariate(1 / (tau_on if online else tau_off))
            if previous is not None and online != previous:
                total += t - spell_start
                seen += 1
            previous = online
            t += p
    return total / seen


def main():
    args = [float(a) for a in sys.argv[1:]] or [10.0, 20.0, 10.0]
    if len(args) != 3 or min(args) <= 0:
        sys.exit("usage: presence-model.py [P tau_on tau_off] (seconds, all > 0)")
    p, tau_on, tau_off = args
    print(f"P = {p:g} s, tau_on = {tau_on:g} s, tau_off = {tau_off:g} s")
    print(f"changes per poll interval: {2 * p / (tau_on + tau_off):.3f}")
    print(f"model mean staleness of seen changes: {model(p, tau_on, tau_off):.3f} s")
    print(f"Monte Carlo mean:                     {monte_carlo(p, tau_on, tau_off):.3f} s")


if __name__ == "__main__":
    main()
