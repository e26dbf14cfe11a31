"""The `crm` command: check, build and run a CRM site from its YAML configuration.

`--site`, `--database` and `--debug` may stand before or after the sub-command. Errors are one
sentence on standard error (a traceback only with `--debug`); a failing command changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import traceback
from pathlib import Path

import click

import engine
from engine.config.layers import available_packs, site_from_environment

SCHEMA_FILE = ".crm/config.schema.json"


class CommandFailed(click.ClickException):
    """A command that could not do its work; printed as one sentence, exit status 1."""

    exit_code = 1

    def show(self, file=None):
        click.echo(f"crm: {self.format_message()}", err=True)


def _remember(ctx: click.Context, param: click.Parameter, value):
    if value is not None and value is not False:
        ctx.find_root().meta[param.name] = value
    return value


def common_options(func):
    """Accept --site, --database and --debug on a sub-command as well as before it."""
    for option in (
        click.option("--site", type=click.Path(file_okay=False), expose_value=False,
                     callback=_remember, help="Site folder (default: $CRM_SITE, else ./site)."),
        click.option("--database", expose_value=False, callback=_remember,
                     help="Database URL (default: $CRM_DATABASE_URL, else app.yaml)."),
        click.option("--debug", is_flag=True, expose_value=False, callback=_remember,
                     help="Show tracebacks."),
    ):
        func = option(func)
    return func


def _site(ctx: click.Context) -> Path:
    return site_from_environment(ctx.find_root().meta.get("site"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@common_options
def cli():
    """Configure, check and run a CRM from YAML."""


@cli.command()
@common_options
def packs():
    """List the industry packs: identifier, label and what each adds."""
    for name, folder in available_packs().items():
        try:
            registry = engine.load_registry(pack=name)
        except engine.ConfigError as exc:
            click.echo(f"{name}\t(invalid: {len(exc.problems)} problems; run crm validate "
                       f"--pack {name})")
            continue
        info = registry.pack
        adds = _pack_additions(folder)
        description = info.description.get("en") if info.description else ""
        click.echo(f"{name}\t{info.label.get('en')} / {info.label.get('zh')}\t{adds}"
                   + (f"\t{description}" if description else ""))


def _pack_additions(folder: Path) -> str:
    counts = []
    for sub, word in (("entities", "entity files"), ("workflows", "workflows"),
                      ("automations", "automations"), ("reports", "reports"),
                      ("dashboards", "dashboards")):
        n = len(list((folder / sub).glob("*.y*ml"))) if (folder / sub).is_dir() else 0
        if n:
            counts.append(f"{n} {word}")
    return "adds " + (", ".join(counts) if counts else "nothing yet")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--pack", "pack", help="The industry pack the site builds on.")
@click.option("--locale", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@common_options
def init(directory: str, pack: str | None, locale: str):
    """Create a site folder with app.yaml choosing PACK."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CommandFailed(f"{target} exists and is not empty; choose a new folder")
    known = available_packs()
    if pack is not None and pack not in known:
        hint = engine.errors.did_you_mean(pack, known)
        raise CommandFailed(f"unknown pack '{pack}'{hint}; `crm packs` lists them")
    app = re.sub(r"[^a-z0-9_]", "_", target.resolve().name.lower()).strip("_") or "site"
    if not app[0].isalpha():
        app = "site_" + app
    app = app[:63]
    schema_line = f"# yaml-language-server: $schema={SCHEMA_FILE}\n"
    (target / "entities").mkdir(parents=True, exist_ok=True)
    (target / ".crm").mkdir(exist_ok=True)
    (target / SCHEMA_FILE).write_text(json.dumps(engine.combined_schema(), indent=2),
                                      encoding="utf-8")
    lines = [schema_line, f"app: {app}\n", f"label: {app.replace('_', ' ').title()}\n"]
    if pack:
        lines.append(f"pack: {pack}\n")
    lines.append(f"locale: {locale}\n")
    (target / "app.yaml").write_text("".join(lines), encoding="utf-8")
    (target / "entities" / "README.md").write_text(
        "Put this site's own entities and extensions here, one per file, starting with\n\n"
        f"    # yaml-language-server: $schema=../{SCHEMA_FILE}\n\n"
        "so that an editor with the YAML language server completes and checks them.\n",
        encoding="utf-8")
    click.echo(f"Created {target} (pack: {pack or 'none'}). Next: crm validate --site {target}")


@cli.command()
@click.option("--pack", "pack", help="Check a pack on its own instead of a site.")
@common_options
@click.pass_context
def validate(ctx: click.Context, pack: str | None):
    """Load and check the whole layered configuration."""
    try:
        if pack is not None:
            registry = engine.load_registry(pack=pack)
        else:
            registry = engine.load_registry(site=_site(ctx))
    except engine.ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        count = len(exc.problems)
        click.echo(f"crm: {count} problem{'s' if count != 1 else ''} in the configuration",
                   err=True)
        ctx.exit(1)
    click.echo(f"OK: {registry.summary()}")


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@common_options
def schema(output: str | None):
    """Write the JSON Schema of the configuration language (for editors)."""
    text = json.dumps(engine.combined_schema(), indent=2, ensure_ascii=False)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


@cli.command()
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Folder to write the pages into (created if missing).")
@click.option("--pack", "pack", help="Document a pack on its own instead of a site.")
@click.option("--locale", type=click.Choice(["en", "zh"]),
              help="Language of the pages (default: the site's locale).")
@common_options
@click.pass_context
def docs(ctx: click.Context, output: str, pack: str | None, locale: str | None):
    """Write the data dictionary as static HTML pages that open without a network."""
    from web.dictionary import DocsFolderTaken, write_docs
    registry = engine.load_registry(pack=pack) if pack is not None else _load(ctx)
    locale = locale or (registry.app.locale if registry.app else "en")
    try:
        written = write_docs(registry, Path(output), locale)
    except DocsFolderTaken as exc:
        raise CommandFailed(str(exc)) from None
    pages = sum(1 for path in written if path.suffix == ".html")
    click.echo(f"wrote {pages} pages to {Path(output) / 'index.html'}")


def _load(ctx: click.Context):
    """Load the site's registry; problems are printed and the command fails."""
    return engine.load_registry(site=_site(ctx))


def _database(ctx: click.Context, registry) -> "sqlalchemy.Engine":
    from engine.storage.database import connect, database_url
    app = registry.app
    url = database_url(ctx.find_root().meta.get("database"), _site(ctx),
                       app.database if app else None)
    return connect(url)


def _services(ctx: click.Context, migrated: bool = True):
    """Return (registry, record service, users) for the site, checking it is migrated."""
    from engine.records.service import RecordService
    from engine.records.users import Users
    from engine.storage.migrate import plan_migration
    registry = _load(ctx)
    db = _database(ctx, registry)
    service = RecordService(registry, db)
    if migrated:
        with db.connect() as conn:
            pending = plan_migration(conn, registry, service.schema).changes
        if pending:
            raise CommandFailed(f"the database needs {len(pending)} changes first; run "
                                "`crm migrate --plan` and `crm migrate`")
    return registry, service, Users(registry, db, service.schema)


@cli.command()
@click.option("--plan", "plan_only", is_flag=True, help="Show the changes; change nothing.")
@click.option("--allow-data-loss", is_flag=True, help="Apply changes that were refused.")
@common_options
@click.pass_context
def migrate(ctx: click.Context, plan_only: bool, allow_data_loss: bool):
    """Bring the database to the configuration, in one transaction."""
    from engine.storage.migrate import MigrationRefused, migrate as apply, plan_migration
    registry = _load(ctx)
    db = _database(ctx, registry)
    try:
        if plan_only:
            with db.connect() as conn:
                plan = plan_migration(conn, registry, allow_data_loss=allow_data_loss)
            for line in plan.lines():
                click.echo(line)
            if not plan.steps:
                click.echo("nothing to do")
            if plan.refused:
                ctx.exit(1)
            return
        try:
            plan = apply(db, registry, allow_data_loss=allow_data_loss)
        except MigrationRefused as exc:
            for line in exc.plan.lines():
                click.echo(line)
            raise CommandFailed(f"{len(exc.plan.refused)} changes were refused and nothing "
                                "was changed; fix the data or use --allow-data-loss") from None
        for line in plan.lines():
            click.echo(line)
        click.echo(f"applied {len(plan.changes)} changes" if plan.changes else "nothing to do")
    finally:
        db.dispose()


@cli.group()
def user():
    """Manage user accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeatable).")
@click.option("--password", help="The password (prompted for when omitted on a terminal).")
@click.option("--display-name", help="The name shown in the UI.")
@click.option("--email")
@common_options
@click.pass_context
def user_add(ctx, name, roles, password, display_name, email):
    """Create a user with one or more roles."""
    from engine.errors import RecordError
    registry, service, users = _services(ctx)
    unknown = [r for r in roles if r not in registry.roles]
    if unknown:
        raise CommandFailed(f"unknown role '{unknown[0]}'"
                            f"{engine.errors.did_you_mean(unknown[0], registry.roles)}; roles: "
                            + ", ".join(sorted(registry.roles)))
    if users.by_username(name):
        raise CommandFailed(f"user '{name}' exists already")
    if password is None:
        if not sys.stdin.isatty():
            raise CommandFailed("no --password given and no terminal to ask for one")
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = users.create(name, password, list(roles), display_name=display_name,
                               email=email)
    except RecordError as exc:
        raise CommandFailed(exc.message) from None
    click.echo(f"created user {name} (id {user_id}) with roles {', '.join(roles)}")


@cli.command()
@common_options
@click.pass_context
def seed(ctx):
    """Load the sample records of the site's layers (skips entities that have records)."""
    from engine.records.seedfiles import load_seed_files
    from engine.records.seeding import load_seeds
    registry, service, users = _services(ctx)
    for line in load_seeds(service, users):
        click.echo(line)
    for line in load_seed_files(service):
        click.echo(line)


def _admin(users) -> "Caller":
    from engine.records.access import SYSTEM
    return SYSTEM


@cli.command("import")
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--all-or-nothing", is_flag=True, help="Import nothing if any row is rejected.")
@click.option("--encoding", help="CSV encoding (default: UTF-8, else GB18030).")
@click.option("--sheet", help="XLSX sheet (default: the first).")
@common_options
@click.pass_context
def import_(ctx, entity, file, all_or_nothing, encoding, sheet):
    """Import CSV or XLSX rows into ENTITY through the record service."""
    from engine.records.transfer import ImportRefused, import_rows, read_table
    registry, service, users = _services(ctx)
    if entity not in registry.entities or registry.entities[entity].parent:
        raise CommandFailed(f"unknown entity '{entity}'"
                            f"{engine.errors.did_you_mean(entity, registry.entities)}")
    try:
        header, rows = read_table(Path(file), encoding, sheet)
        with click.progressbar(length=len(rows), label=f"importing {entity}",
                               file=sys.stderr) as bar:
            result = import_rows(service, _admin(users), entity, header, rows,
                                 all_or_nothing, progress=bar.update)
    except ImportRefused as exc:
        raise CommandFailed(f"{file}: {exc}") from None
    for rejection in result.rejected:
        click.echo(f"{file}:{rejection.line}: rejected: {'; '.join(rejection.reasons)}")
    if result.rolled_back:
        click.echo(f"nothing imported: {len(result.rejected)} rows were rejected "
                   "(--all-or-nothing)")
    else:
        click.echo(f"{result.created} created, {result.updated} updated, "
                   f"{len(result.rejected)} rejected")
    if result.rejected:
        ctx.exit(1)


@cli.command()
@click.argument("entity")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@common_options
@click.pass_context
def export(ctx, entity, fmt, output):
    """Export the records of ENTITY (formula injection neutralised)."""
    from engine.records.transfer import export_rows, write_csv, write_xlsx
    registry, service, users = _services(ctx)
    if entity not in registry.entities or registry.entities[entity].parent:
        raise CommandFailed(f"unknown entity '{entity}'"
                            f"{engine.errors.did_you_mean(entity, registry.entities)}")
    rows = export_rows(service, _admin(users), entity)
    if fmt == "xlsx":
        if not output:
            raise CommandFailed("XLSX needs -o FILE")
        count = write_xlsx(rows, Path(output), entity)
    elif output:
        with open(output, "w", encoding="utf-8", newline="") as out:
            count = write_csv(rows, out)
    else:
        stream = click.get_text_stream("stdout", encoding="utf-8")
        count = write_csv(rows, stream)
    click.echo(f"exported {count} {entity} records", err=True)


@cli.command("sweep-files")
@click.option("--dry-run", is_flag=True, help="List the files that would be removed.")
@click.option("--min-age", type=click.IntRange(min=0), default=60, show_default=True,
              help="Minutes: younger files are kept (their upload may still be saving).")
@common_options
@click.pass_context
def sweep_files(ctx, dry_run, min_age):
    """Remove stored files no record or attachment refers to any more (docs/files.md)."""
    import datetime as dt

    from engine.records.attachments import sweep_orphans
    _, service, _ = _services(ctx)
    orphans = sweep_orphans(service, dt.timedelta(minutes=min_age), dry_run)
    for key in orphans:
        click.echo(key)
    click.echo(f"{len(orphans)} unreferenced files {'found' if dry_run else 'removed'} in "
               f"{getattr(service.files, 'root', 'the file store')}", err=True)


@cli.group()
def mail():
    """Mail: fetch over IMAP, import .eml/.mbox files, match again (docs/mail.md)."""


def _mail_service(ctx):
    _, service, _ = _services(ctx)
    if service.registry.mail is None:
        raise CommandFailed("mail is not configured: add a mail: section to app.yaml "
                            "(docs/mail.md)")
    return service


@mail.command("fetch")
@click.option("--mailbox", help="Fetch only this mailbox (a name under mail.mailboxes).")
@common_options
@click.pass_context
def mail_fetch(ctx, mailbox):
    """Store new mail of the configured IMAP mailboxes (from their UID checkpoints)."""
    from engine.mail.fetch import fetch
    from engine.mail.store import MailNotConfigured
    try:
        results = fetch(_mail_service(ctx), mailbox)
    except MailNotConfigured as exc:
        raise CommandFailed(str(exc)) from None
    for result in results:
        click.echo(result.line())
        for failure in result.failures:
            click.echo(f"  failed: {failure}", err=True)
    if any(r.error or r.failures for r in results):
        ctx.exit(1)


@mail.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@common_options
@click.pass_context
def mail_import(ctx, files):
    """Store the messages of .eml and .mbox files."""
    from engine.mail.imports import import_files
    results = import_files(_mail_service(ctx), list(files))
    for result in results:
        click.echo(result.line())
        for failure in result.failures:
            click.echo(f"  failed: {failure}", err=True)
    if any(r.error or r.failures for r in results):
        ctx.exit(1)


@mail.command("relink")
@common_options
@click.pass_context
def mail_relink(ctx):
    """Match every stored message to records again (after adding customers or addresses)."""
    from engine.mail.store import MailStore
    from engine.storage.database import write_transaction
    service = _mail_service(ctx)
    with write_transaction(service.engine) as conn:
        added = MailStore(service).relink(conn)
    click.echo(f"{added} links added")


@cli.command("rebuild-sharing")
@common_options
@click.pass_context
def rebuild_sharing(ctx):
    """Recompute the share rows of every sharing rule (docs/language.md section 10)."""
    from engine.storage.sharing import rebuild_all
    _, service, _ = _services(ctx)
    for line in rebuild_all(service.engine, service.registry, service.schema):
        click.echo(line)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--dev", is_flag=True,
              help="Reload the YAML whenever it is saved and show its problems in the browser "
                   "(development only: loopback addresses only).")
@common_options
@click.pass_context
def serve(ctx, host, port, threads, dev=False):
    """Serve the web UI and the JSON API (with the background work in this process, or sent
    to `crm worker` processes when $CRM_BROKER_URL names a broker)."""
    import waitress

    from engine.runtime.embedded import start_background
    from engine.runtime.logs import configure_logging
    from web import create_app
    if dev:
        return _serve_dev(ctx, host, port, threads)
    configure_logging()
    registry, service, users = _services(ctx)
    try:
        app = create_app(registry, service.engine)
    except RuntimeError as exc:  # production without its secret key
        raise CommandFailed(str(exc)) from None
    background = start_background(app.extensions["crm_runtime"])
    click.echo(f"serving {registry.app.label.get() if registry.app else 'CRM'} on "
               f"http://{host}:{port}/  (Ctrl+C stops)")
    with _stopped_by_sigterm():
        try:
            waitress.serve(app, host=host, port=port, threads=threads, ident="crm")
        except KeyboardInterrupt:
            pass
        finally:
            background.stop()


@contextlib.contextmanager
def _stopped_by_sigterm():
    """SIGTERM stops a serving command as Ctrl+C does: its `finally` hands the work back."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_dev(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """`crm serve --dev`: see docs/tools.md, "Live reload"."""
    import waitress

    from engine.runtime.embedded import EmbeddedRunner
    from web.devserver import DevServer, is_loopback
    if not is_loopback(host):
        # the dev pages show the configuration and apply migrations without a sign-in
        raise CommandFailed(f"--dev listens on loopback addresses only (127.0.0.1, ::1), not "
                            f"{host}: it shows the configuration and applies migrations "
                            "without a sign-in; serve without --dev for other hosts")

    def report(state) -> None:
        when = state.loaded_at.strftime("%H:%M:%S")
        if state.status == "ok":
            click.echo(f"{when} configuration OK (reload {state.generation})", err=True)
        elif state.status == "invalid":
            count = len(state.problems)
            click.echo(f"{when} {count} problem{'s' if count != 1 else ''} in the "
                       "configuration; the browser shows them:", err=True)
            for problem in state.problems:
                click.echo(f"  {problem}", err=True)
        elif state.status == "migration":
            click.echo(f"{when} the database needs {len(state.plan.changes)} changes; the "
                       "browser shows the plan", err=True)
        else:
            click.echo(f"{when} reload failed: {state.failure}", err=True)

    server = DevServer(_site(ctx), database=ctx.find_root().meta.get("database"),
                       background=lambda runtime: EmbeddedRunner(runtime).start_scheduler(),
                       on_reload=report).start()
    click.echo("crm: development server: YAML edits are applied when saved; do not use it "
               "in production", err=True)
    click.echo(f"serving {_site(ctx)} on http://{host}:{port}/  (Ctrl+C stops)")
    try:
        waitress.serve(server, host=host, port=port, threads=threads, ident="crm")
    finally:
        server.stop()


@cli.command()
@click.option("--pack", "pack", default="manufacturing", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--dir", "folder", type=click.Path(file_okay=False),
              help="Where to build the demo site (default: ./crm-demo-PACK).")
@click.option("--no-serve", is_flag=True, help="Build and print the credentials, then stop.")
@click.pass_context
def demo(ctx, pack, port, host, folder, no_serve):
    """Build a demo site on SQLite with sample data and users, and serve it."""
    import secrets

    from engine.records.seedfiles import load_seed_files
    from engine.records.seeding import load_seeds
    from engine.storage.migrate import migrate as apply
    known = available_packs()
    if pack not in known:
        raise CommandFailed(f"unknown pack '{pack}'{engine.errors.did_you_mean(pack, known)}")
    site = Path(folder or f"crm-demo-{pack}")
    if not (site / "app.yaml").is_file():
        ctx.invoke(init, directory=str(site), pack=pack, locale="zh")
    ctx.find_root().meta["site"] = str(site)
    ctx.find_root().meta.pop("database", None)
    registry = _load(ctx)
    db = _database(ctx, registry)
    apply(db, registry)
    db.dispose()
    registry, service, users = _services(ctx)
    credentials = site / ".crm" / "demo_credentials.json"
    if credentials.is_file():
        accounts = json.loads(credentials.read_text())
    else:
        password = secrets.token_urlsafe(9)
        accounts = {"admin": password}
        accounts.update({role: password for role in registry.roles if role != "admin"})
        for username in accounts:
            if not users.by_username(username):
                role = "admin" if username == "admin" else username
                users.create(username, password, [role],
                             display_name=registry.roles[role].label.get("zh"))
        credentials.write_text(json.dumps(accounts, indent=2))
        credentials.chmod(0o600)
    for line in load_seeds(service, users):
        click.echo(f"  sample data: {line}")
    for line in load_seed_files(service):
        click.echo(f"  sample data: {line}")
    click.echo(f"Demo site: {site.resolve()} (pack {pack}, SQLite)")
    click.echo("Sign in as (username / password):")
    for username, password in accounts.items():
        click.echo(f"  {username} / {password}")
    if no_serve:
        return
    ctx.invoke(serve, host=host, port=port, threads=8)


@cli.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table",
              show_default=True)
@common_options
@click.pass_context
def report(ctx, name, fmt):
    """Print a report (as the admin) in the terminal, or as CSV."""
    import csv

    from engine.records.access import SYSTEM
    from engine.records.reports import run_report
    registry, service, users = _services(ctx)
    if name not in registry.reports:
        raise CommandFailed(f"unknown report '{name}'"
                            f"{engine.errors.did_you_mean(name, registry.reports)}")
    result = run_report(service, SYSTEM, name)
    header = [c["name"] for c in result["columns"]]
    rows = [["" if v is None else str(v) for v in row] for row in result["rows"]]
    if fmt == "csv":
        writer = csv.writer(click.get_text_stream("stdout"), lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))


@cli.group()
def rates():
    """Keep the exchange rates reports convert money with (docs/reports.md)."""


def _exchange_rates(ctx):
    from engine.records.currency import ExchangeRates
    registry, service, users = _services(ctx)
    return ExchangeRates(registry, service.engine, service.schema)


@rates.command("list")
@click.option("--currency", help="Only this currency.")
@click.option("--since", help="From this day (YYYY-MM-DD).")
@click.option("--until", help="Up to this day (YYYY-MM-DD).")
@common_options
@click.pass_context
def rates_list(ctx, currency, since, until):
    """Print the rates for the base currency, newest first: currency, day, rate."""
    found = _exchange_rates(ctx).list(currency, since, until, limit=100_000)
    for rate in found:
        click.echo(f"{rate['currency']}\t{rate['day']}\t{rate['rate']}\t{rate['base']}")
    if not found:
        click.echo("no rates")


@rates.command("set")
@click.argument("currency")
@click.argument("day")
@click.argument("rate")
@common_options
@click.pass_context
def rates_set(ctx, currency, day, rate):
    """Set the rate of CURRENCY from DAY on: 1 CURRENCY = RATE units of the base currency."""
    from engine.errors import ValidationFailed
    try:
        written = _exchange_rates(ctx).set_many([{"currency": currency, "day": day,
                                                  "rate": rate}])
    except ValidationFailed as exc:
        raise CommandFailed("; ".join(f"{key.split('.', 1)[1]}: {messages[0]}"
                                      for key, messages in exc.fields.items())) from None
    for item in written:
        click.echo(f"1 {item['currency']} = {item['rate']} {item['base']} from {item['day']}")


@rates.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@common_options
@click.pass_context
def rates_import(ctx, file):
    """Import rates from CSV or XLSX (columns currency, day or date, rate); all or none."""
    from engine.errors import ValidationFailed
    try:
        written = _exchange_rates(ctx).import_file(Path(file))
    except ValidationFailed as exc:
        for key, messages in exc.fields.items():
            where, name = key.rsplit(".", 1)
            click.echo(f"{file}: {where}: {name} {messages[0]}", err=True)
        raise CommandFailed(f"{len(exc.fields)} values are invalid; no rate was imported") \
            from None
    click.echo(f"imported {len(written)} rates")


@rates.command("delete")
@click.argument("currency")
@click.argument("day")
@common_options
@click.pass_context
def rates_delete(ctx, currency, day):
    """Remove the rate of CURRENCY on DAY."""
    if not _exchange_rates(ctx).delete(currency, day):
        raise CommandFailed(f"there is no {currency.upper()} rate on {day}")
    click.echo(f"deleted the {currency.upper()} rate of {day}")


def _broker_option(func):
    return click.option("--broker", "broker", metavar="URL",
                        help="The job queue's Redis, e.g. redis://127.0.0.1:6379/0 (default: "
                             "$CRM_BROKER_URL).")(func)


def _run_worker_process(ctx, broker, **options) -> None:
    from engine.runtime.context import Runtime
    from engine.runtime.logs import configure_logging
    from engine.runtime.queue import broker_url
    from engine.runtime.worker import WorkerProcess
    url = broker_url(broker)
    if url is None:
        raise CommandFailed("no broker: pass --broker redis://HOST:6379/0 or set CRM_BROKER_URL "
                            "(without one, `crm serve` runs the background work itself)")
    configure_logging()
    registry, service, users = _services(ctx)
    runtime = Runtime(registry, service.engine, service=service)
    try:
        process = WorkerProcess(runtime, url, **options)
        status = process.run()
    except ValueError as exc:  # an unsupported broker URL
        raise CommandFailed(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the broker cannot be reached: say which
        if type(exc).__module__.startswith(("redis", "dramatiq")):
            raise CommandFailed(f"cannot reach the broker {url}: {exc}") from None
        raise
    ctx.exit(status)


@cli.command()
@_broker_option
@click.option("--queues", default=",".join(("default", "bulk")), show_default=True,
              help="Comma-separated queues to consume (bulk: imports, exports, share rows).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256),
              help="Jobs run at once by this process.")
@click.option("--with-scheduler", is_flag=True,
              help="Also ask for due work (schedules, sweeps), as `crm scheduler` does.")
@click.option("--scheduler-interval", default=5.0, show_default=True,
              type=click.FloatRange(0.5, 3600), help="Seconds between the scheduler's rounds.")
@click.option("--metrics-port", type=click.IntRange(1, 65535),
              help="Serve Prometheus metrics on this port.")
@click.option("--shutdown-seconds", default=30.0, show_default=True,
              type=click.FloatRange(0, 3600),
              help="On SIGTERM, how long to let running jobs finish before handing them back.")
@common_options
@click.pass_context
def worker(ctx, broker, queues, threads, with_scheduler, scheduler_interval, metrics_port,
           shutdown_seconds):
    """Run background jobs from the queue (webhooks, schedules, mail, imports, exports)."""
    from engine.runtime.queue import QUEUES
    chosen = tuple(q.strip() for q in queues.split(",") if q.strip())
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown or not chosen:
        raise CommandFailed(f"unknown queue '{(unknown or [''])[0]}': the queues are "
                            f"{', '.join(QUEUES)}")
    _run_worker_process(ctx, broker, queues=chosen, threads=threads,
                        scheduler_interval=scheduler_interval if with_scheduler else None,
                        metrics_port=metrics_port, shutdown_seconds=shutdown_seconds)


@cli.command()
@_broker_option
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.5, 3600),
              help="Seconds between two rounds.")
@common_options
@click.pass_context
def scheduler(ctx, broker, interval):
    """Ask the queue for due work: schedule ticks, webhook retries, mail fetches, lost jobs
    (run one or more; one leads at a time)."""
    _run_worker_process(ctx, broker, scheduler_interval=interval, consume=False)


@cli.command("run-automations")
@common_options
@click.pass_context
def run_automations(ctx):
    """Run every schedule automation that is due, once, and deliver due webhooks (for cron)."""
    registry, service, users = _services(ctx)
    lines = service.automations.run_due() + service.webhooks.deliver_due()
    for line in lines:
        click.echo(line)
    if not lines:
        click.echo("nothing due")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        status = cli.main(args=args, prog_name="crm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("crm: aborted", err=True)
        return 1
    except engine.ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return 1
    except engine.RecordError as exc:
        click.echo(f"crm: {exc.message}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a clear sentence
        if debug:
            traceback.print_exc()
        else:
            click.echo(f"crm: {type(exc).__name__}: {exc} (run with --debug for details)",
                       err=True)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
