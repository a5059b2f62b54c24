"""Example robot adapters for the recorder. They may use anything (the Meta-World one uses the simulator);
the recorder itself never imports them."""
