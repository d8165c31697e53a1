"""The Typer app and its command groups."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Email digests of the news, blog posts and papers that mention the skills you follow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's plain help and usage errors (one line and a hint), for every group: Typer's Rich panels load
    # Rich's Markdown and traceback modules, a third of the start-up of ``digest --help`` (issue 17).
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema and bundled data.", no_args_is_help=True)
feeds_app = typer.Typer(help="The feeds we crawl.", no_args_is_help=True)
skills_app = typer.Typer(help="Look up skills in the taxonomy.", no_args_is_help=True)
deliveries_app = typer.Typer(help="Digests sent, skipped or failed.", no_args_is_help=True)
subscribers_app = typer.Typer(help="People and their subscriptions.", no_args_is_help=True)
taxonomy_app = typer.Typer(help="The skill taxonomy: load, inspect, edit, re-tag.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(feeds_app, name="feeds")
app.add_typer(skills_app, name="skills")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(taxonomy_app, name="taxonomy")
app.add_typer(subscribers_app, name="subscribers")
