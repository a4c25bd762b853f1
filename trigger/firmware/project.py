"""The written hls4ml project as a self-contained folder, usable after it is moved.

``trigger synth`` writes the project under a temporary name and renames it when complete
(:func:`trigger.runtime.atomic_path`). hls4ml 1.3.0 names the folder in two places, so a project
published that way would point at the temporary name:

- its ``build_lib.sh`` compiles the C-simulation library with ``-D WEIGHTS_DIR="<folder>/firmware/weights"``
  (a string baked into the library; the library reads its ``.txt`` weights from there on the first
  call and stops the calling process with ``exit(1)`` if they are not there). :func:`compile_relocatable`
  compiles the library with the weights folder found at run time next to the library itself
  (``dladdr``), so the library works from the folder wherever it is, at no extra compile.
  Embedding the weights in the library instead (hls4ml's ``WriteWeightsTxt: false``) costs minutes
  of g++ on a 16k-weight model, and a second compile after the rename doubles the compile time.
- its ``hls4ml_config.yml`` (``OutputDir``, ``KerasModel``), which
  ``hls4ml.converters.link_existing_project`` reads to rebuild and call the library:
  :func:`point_config_at` rewrites them to the final folder before the rename.

The vendor flow (``build_prj.tcl``) is untouched: it copies ``firmware/weights`` into its own
C-simulation folder and reads them there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: the header that gives the C-simulation library its weights folder, in the project's firmware/
WEIGHTS_DIR_HEADER = "firmware/trigger_weights_dir.h"
_HEADER = """\
// Written by trigger (trigger/firmware/project.py): the C-simulation library built by build_lib.sh
// reads its weights from firmware/weights next to itself (firmware/<project>-<stamp>.so), found at
// run time, so the project folder works wherever it is moved. Not used by the vendor flow.
#ifndef TRIGGER_WEIGHTS_DIR_H_
#define TRIGGER_WEIGHTS_DIR_H_

#include <dlfcn.h>
#include <string>

// static: each library has its own copy, so two loaded projects never share one (ELF interposition)
static inline std::string trigger_weights_dir() {
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&trigger_weights_dir), &info) != 0 && info.dli_fname != nullptr) {
        std::string library(info.dli_fname);
        std::string::size_type slash = library.rfind('/');
        return (slash == std::string::npos ? std::string(".") : library.substr(0, slash)) + "/weights";
    }
    return "firmware/weights";
}

#endif
"""
#: hls4ml 1.3.0's line in templates/vivado/build_lib.sh, and what replaces it
_ABSOLUTE = 'WEIGHTS_DIR="\\"${BASEDIR}/firmware/weights\\""'
_AT_RUN_TIME = 'WEIGHTS_DIR="trigger_weights_dir()"'
_DEFINE = '-D WEIGHTS_DIR="${WEIGHTS_DIR}"'


def relocatable_build_script(project_dir: str | os.PathLike) -> None:
    """Make the project's ``build_lib.sh`` compile a library that finds its weights next to itself
    (see the module doc); writes :data:`WEIGHTS_DIR_HEADER`. Raises RuntimeError if ``build_lib.sh``
    is not hls4ml 1.3.0's (the fix would silently not apply)."""
    project_dir = Path(project_dir)
    script = project_dir / "build_lib.sh"
    text = script.read_text()
    if text.count(_ABSOLUTE) != 1 or _DEFINE not in text:
        raise RuntimeError(f"{script} is not hls4ml 1.3.0's build script (no line {_ABSOLUTE}); "
                           "the C-simulation library would read its weights from an absolute path")
    (project_dir / WEIGHTS_DIR_HEADER).write_text(_HEADER)
    text = text.replace(_ABSOLUTE, _AT_RUN_TIME).replace(_DEFINE, f"-include {WEIGHTS_DIR_HEADER} {_DEFINE}")
    script.write_text(text)  # keeps its mode (executable)


def compile_relocatable(hls_model: Any) -> None:
    """``hls_model.compile()`` (write the project, build and load the library) with the library
    finding its weights next to itself (:func:`relocatable_build_script`)."""
    hls_model.write()
    relocatable_build_script(hls_model.config.get_output_dir())
    hls_model._compile()  # ModelGraph.compile() is write() then _compile()


def point_config_at(project_dir: str | os.PathLike, final_dir: str | os.PathLike) -> None:
    """Rewrite ``hls4ml_config.yml`` in ``project_dir`` so that its folders (``OutputDir``, the
    ``KerasModel`` file) name ``final_dir`` (absolute), the name the folder gets when it is published."""
    import yaml

    path = Path(project_dir) / "hls4ml_config.yml"
    final = Path(final_dir).parent.resolve() / Path(final_dir).name

    class Loader(yaml.FullLoader):  # hls4ml dumps with yaml.Dumper: tuples are !!python/tuple
        """hls4ml's file with its ``!keras_model`` tag kept."""

    class Dumper(yaml.Dumper):
        """Writes the tag back as hls4ml does."""

    class KerasModelPath(str):
        """The ``!keras_model`` scalar (the saved Keras model's path)."""

    Loader.add_constructor("!keras_model", lambda loader, node: KerasModelPath(loader.construct_scalar(node)))
    Dumper.add_representer(KerasModelPath, lambda dumper, value: dumper.represent_scalar("!keras_model", str(value)))
    config = yaml.load(path.read_text(), Loader=Loader)
    config["OutputDir"] = str(final)
    if isinstance(config.get("KerasModel"), KerasModelPath):
        config["KerasModel"] = KerasModelPath(final / Path(config["KerasModel"]).name)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.dump(config, Dumper=Dumper))
    os.replace(tmp, path)
