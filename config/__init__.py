"""Haven's configuration: one TOML file per cluster, validated into immutable data.

    from config import load_config, parse_config, check_config, ConfigError, Cluster
    cfg = load_config("/etc/haven/cluster.toml")   # ConfigError lists every problem

Modules: `loader` (entry points), `issues` (Issue, ConfigError), `model` (the dataclasses),
`defaults` (every default and range), `durations`, `reader` (typed table reading),
`typespec` + `catalog` + `catalog_monitors` (type tables), one module per section
(`topology`, `timing`, `node`, `typed`, `groups`, `policies`, `monitors`), `references` and
`dependencies` (cross-checks). Example configurations are in `config/examples/`.
"""

from config.catalog import DEFAULT_TYPES
from config.durations import format_duration, parse_duration
from config.issues import ConfigError, Issue
from config.loader import check_config, check_text, load_config, parse_config, validate
from config.model import (
    AlertDestination,
    Cluster,
    FailurePolicy,
    Group,
    GroupResource,
    Heartbeat,
    Monitor,
    MonitorRecovery,
    Network,
    NodeActor,
    NodeSettings,
    NpResource,
    Ports,
    Server,
    Timing,
)
from config.typespec import Param, TypeSpec, TypeTables

__all__ = [
    "DEFAULT_TYPES",
    "AlertDestination",
    "Cluster",
    "ConfigError",
    "FailurePolicy",
    "Group",
    "GroupResource",
    "Heartbeat",
    "Issue",
    "Monitor",
    "MonitorRecovery",
    "Network",
    "NodeActor",
    "NodeSettings",
    "NpResource",
    "Param",
    "Ports",
    "Server",
    "Timing",
    "TypeSpec",
    "TypeTables",
    "check_config",
    "check_text",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "validate",
]
