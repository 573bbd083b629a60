"""The Typer application objects; command modules attach their verbs to these."""

import typer

PBC_HELP = (
    "Periodic box: 'cluster' makes molecules whole and keeps the chains of a complex "
    "together (nearest image, continuous between frames); 'whole' only makes molecules "
    "whole; 'none' uses the frames as read."
)

app = typer.Typer(
    name="seqdance",
    help="SeqDance/ESMDance: protein dynamics features, datasets, models and mutation scores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
features_app = typer.Typer(
    help="Extract dynamic features from structures (NMA) and trajectories (MD).",
    no_args_is_help=True,
)
app.add_typer(features_app, name="features")
