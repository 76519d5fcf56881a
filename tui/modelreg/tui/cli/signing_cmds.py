"""trust add|list|rm and sign: signed models with OpenSSF Model Signing (issue 12, docs/governance.md)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from modelreg.shared.errors import InvalidInput

from .context import Context, json_option, pass_ctx
from .render import Span, emit_json, out, table, when

MAX_KEY_FILE = 64 * 1024  # the daemon's own limit (services/signing.py)


@click.group()
def trust() -> None:
    """The public keys and certificates the registry verifies signature bundles with (admin)."""


@trust.command("add")
@click.argument("name")
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@pass_ctx
def trust_add(ctx: Context, name: str, keyfile: Path) -> None:
    """Trust KEYFILE (a PEM public key, or an X.509 certificate that issues signing
    certificates) as NAME, the signer versions show and `signed_by NAME` gates name."""
    if keyfile.stat().st_size > MAX_KEY_FILE:
        raise InvalidInput(f"{keyfile} is larger than {MAX_KEY_FILE // 1024} KB: not a PEM key or certificate")
    pem = keyfile.read_text(encoding="utf-8", errors="replace")
    if "PRIVATE KEY" in pem:  # refused here: a private key never leaves this machine
        raise InvalidInput(f"{keyfile} is a private key: trust its PUBLIC key (openssl pkey -in {keyfile} -pubout "
                           "-out key.pub) or a certificate; nothing was sent")
    added = ctx.client().trust_key(name, pem)
    if ctx.as_json:
        return emit_json(added)
    out.line(f"trusted {added['kind']} ", Span(added["name"], "bold"), f"  sha256 {added['fingerprint']}")


@trust.command("list")
@json_option
@pass_ctx
def trust_list(ctx: Context) -> None:
    """Every trusted key: name, kind, sha256 fingerprint of its public key, added by and when."""
    items = ctx.client().trusted_keys()
    if ctx.as_json:
        return emit_json(items)
    if not items:
        out.line("no trusted keys: `modelreg trust add NAME KEYFILE` (a public key or a certificate)")
        return
    t = table("name", "kind", "fingerprint (sha256)", "added", "by")
    for item in items:
        kind = f"certificate ({item['subject']})" if item["kind"] == "certificate" else item["kind"]
        t.add_row(item["name"], kind, item["fingerprint"], when(item["created_at"]), item["created_by"])
    out.table(t)


@trust.command("rm")
@click.argument("name")
@json_option
@pass_ctx
def trust_rm(ctx: Context, name: str) -> None:
    """Stop trusting NAME: the versions it had verified show `untrusted` from now on."""
    removed = ctx.client().untrust_key(name)
    if ctx.as_json:
        return emit_json(removed)
    n = removed["versions_untrusted"]
    out.line(f"removed {removed['name']}" + (f"; {n} version(s) it had verified are now untrusted" if n else ""))


@click.command()
@click.argument("ref")
@click.option("--key", "key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The PEM elliptic-curve private key to sign with (it never leaves this machine).")
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Sign as this certificate (of --key's public key) instead of a bare key.")
@click.option("--chain", "chain", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificates that issued --certificate, up to the trusted one (repeatable).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("model.sig"),
              show_default=True, help="Where to write the bundle.")
@click.option("--attach", is_flag=True, help="Also give the bundle to the version (verified at once).")
@json_option
@pass_ctx
def sign(ctx: Context, ref: str, key: Path, certificate: Path | None, chain: tuple[Path, ...], output: Path,
         attach: bool) -> None:
    """Sign the files of REF as the registry holds them: an OpenSSF Model Signing bundle
    (the `model_signing verify` tool accepts it on a copy of the version)."""
    import model_signing

    if bool(chain) != (certificate is not None):  # model_signing puts at least one issuer in the bundle
        raise InvalidInput("--certificate and --chain go together: --chain names the issuing CA's certificate "
                           "(and any between)")
    c = ctx.client()
    v = c.version(ref)
    if not v.get("files"):
        raise InvalidInput(f"{v['model']}@{v['version']} has no stored files to sign ({v['status']})")
    config = model_signing.signing.Config()
    try:
        if certificate is None:
            config.use_elliptic_key_signer(private_key=key)
        else:
            config.use_certificate_signer(private_key=key, signing_certificate=certificate, certificate_chain=chain)
    except (TypeError, ValueError) as exc:  # not a key, an encrypted one, another curve, a certificate of another key
        raise InvalidInput(f"cannot sign with {key}: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="modelreg-sign-") as tmp:
        folder = Path(tmp) / v["model"]  # the manifest names the model
        for f in v["files"]:
            dest = folder / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            c.download(f"{v['model']}@{v['version']}", f["path"], dest)
        config.sign(folder, output)
    result = {"model": v["model"], "version": v["version"], "output": str(output), "signature": None}
    if attach:
        blob = c.upload_blob(output)
        result["signature"] = c.attach_signature(f"{v['model']}@{v['version']}", blob["sha256"])["signature"]
    if ctx.as_json:
        return emit_json(result)
    out.line(f"signed {v['model']}@{v['version']} ({len(v['files'])} file(s)) → {output}")
    if result["signature"]:
        sig = result["signature"]
        out.line("attached: ", Span(sig["message"], "green" if sig["status"] == "signed" else "bold red"))


COMMANDS = [trust, sign]
