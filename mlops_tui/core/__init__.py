"""Pure domain code: values, rules and statistics. No I/O, clocks or heavy imports."""
