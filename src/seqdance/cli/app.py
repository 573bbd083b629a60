"""The Typer application objects; command modules attach their verbs to these."""

import typer

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
