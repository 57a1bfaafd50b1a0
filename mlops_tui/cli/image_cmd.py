"""`mlops-tui image`: trainer images for containerised retrains (build, list)."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_tui.cli import context
from mlops_tui.cli.output import JsonOption, emit, info

app = typer.Typer(help="Trainer images for containerised retrains: build, list.",
                  no_args_is_help=True)


def image_doc(image) -> dict:
    return {"tag": image.tag, "id": image.id, "cache_key": image.cache_key,
            "pipeline_fingerprint": image.pipeline_fingerprint, "code": image.code_hash,
            "harness": image.harness_hash, "wheelhouse_lock": image.lock_hash,
            "base_image": image.base_image, "base_image_id": image.base_image_id,
            "python": image.python_version, "created": image.created, "size": image.size,
            "built": image.built, "seconds": round(image.seconds, 2), "notes": list(image.notes)}


@app.command("build")
def build_command(
    rebuild: Annotated[bool, typer.Option(
        "--rebuild", help="Build again without the engine's layer cache.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Build the trainer image of the workspace's pipeline (or find it cached).

    Base image from \\[runner] base_image (never pulled); wheels from the wheelhouse, downloaded
    with pip only if one is missing; exits 6 if the engine or the base image is unavailable.

    Example: mlops-tui image build && mlops-tui retrain --regime suv --runner docker --wait
    """
    from mlops_tui.services.images import ensure_trainer_image
    from mlops_tui.services.retrain import check_pipeline, pipeline_dir

    workspace = context.workspace()
    directory = pipeline_dir(workspace)
    check_pipeline(directory)
    image = ensure_trainer_image(workspace, directory, rebuild=rebuild,
                                 progress=None if as_json else info)

    def human(console) -> None:
        state = f"built in {image.seconds:.1f}s" if image.built else "cached"
        console.print(f"{image.tag}  {image.id[:19]}  ({state})", markup=False)
        console.print(f"  base {image.base_image} ({image.base_image_id[:19]}), Python "
                      f"{image.python_version}, cache key {image.cache_key[:16]}", markup=False)

    emit(as_json, image_doc(image), human)


@app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """Trainer images in the Docker engine, newest first.

    Example: mlops-tui image list --json
    """
    from mlops_tui.services.images import list_trainer_images

    images = list_trainer_images()

    def human(console) -> None:
        from mlops_tui.cli.render import TextTable as Table

        table = Table(box=None, header_style="bold")
        for column in ("image", "id", "python", "base", "created", "size"):
            table.add_column(column)
        for image in images:
            table.add_row(image.tag, image.id[7:19], image.python_version, image.base_image,
                          image.created[:19].replace("T", " "), f"{image.size / 1e6:.0f} MB")
        console.print(table if images else "no trainer images (build one: mlops-tui image build)")

    emit(as_json, {"images": [image_doc(i) for i in images]}, human)
