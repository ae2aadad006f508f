"""Built-in knowledge graphs: DevOps troubleshooting and an invented world where pretraining cannot help.

Each is built deterministically. Relations are functional in the direction questions walk them, so every
multi-hop question has exactly one answer.
"""

from __future__ import annotations

from random import Random

from tracestyle.tasks.kg.graph import KnowledgeGraph
from tracestyle.tasks.kg.loader import kg_from_json

ROOT_CAUSES = [
    "disk full", "expired TLS certificate", "memory leak", "DNS misconfiguration", "connection pool exhaustion",
    "clock skew", "stale cache entry", "missing IAM permission", "runaway cron job", "exhausted file descriptors",
    "wrong config flag", "database lock contention", "broken base image", "unpinned dependency upgrade",
    "full message queue", "misrouted load balancer rule", "rotated API secret", "corrupt index file",
    "thread pool starvation", "kernel OOM pressure",
]
ERRORS = [
    "ENOSPC write failure", "x509 handshake error", "OOMKilled restart", "NXDOMAIN lookup error",
    "pool timeout exception", "token not yet valid error", "checksum mismatch warning", "AccessDenied response",
    "CPU throttling alert", "too many open files error", "feature flag parse error", "deadlock detected error",
    "exec format error", "ImportError at startup", "queue overflow error", "HTTP 502 from gateway",
    "401 Unauthorized response", "segment read error", "request queue backlog", "pod eviction event",
]
SYMPTOMS = [
    "failed deploys", "browser security warnings", "slowly rising memory graphs", "intermittent login failures",
    "hanging checkout page", "rejected webhook calls", "inconsistent search results", "blank admin dashboard",
    "late nightly reports", "dropped websocket sessions", "missing product images", "stuck payment jobs",
    "crash-looping containers", "empty service logs", "delayed notifications", "error pages for users",
    "broken partner integrations", "partial API responses", "slow page loads", "vanishing background workers",
    "spiking error budget", "timeouts on health checks", "duplicate emails to customers", "stale dashboard metrics",
]
FIXES = [
    "log rotation cleanup", "certificate renewal", "heap profiling patch", "resolver config correction",
    "pool size increase", "NTP resync", "cache invalidation", "IAM policy update", "cron schedule fix",
    "ulimit raise", "config rollback", "query batching change", "base image rebuild", "dependency pin",
    "consumer scale-out", "routing rule repair", "secret redeploy", "index rebuild", "worker pool resize",
    "memory limit tuning",
]
TOOLS = ["Prometheus", "Grafana", "Sentry", "PagerDuty", "Datadog", "Kibana", "Jaeger", "Nagios", "Terraform",
         "Ansible", "ArgoCD", "Vault"]
SERVICES = ["checkout service", "auth service", "search service", "billing service", "notification service",
            "inventory service", "media service", "reporting service", "gateway service", "profile service",
            "scheduler service", "analytics service"]
ALERTS = [f"alert ALRT-{101 + i}" for i in range(len(SYMPTOMS))]
TEAMS = ["platform team", "SRE team", "database team", "security team", "networking team", "release team"]

DEVOPS_RELATIONS = [
    ("causes", "root_cause", "error", ["causes"], "caused_by", ["is caused by"]),
    ("leads_to", "error", "symptom", ["leads to"], "results_from", ["results from"]),
    ("fixed_by", "root_cause", "fix", ["is fixed by"], "fixes", ["fixes"]),
    ("detected_by", "symptom", "tool", ["is detected by"], "detects", ["detects"]),
    ("requires", "fix", "tool", ["requires"], "required_by", ["is required by"]),
    ("maintained_by", "tool", "team", ["is maintained by"], "maintains", ["maintains"]),
    ("occurs_in", "error", "service", ["occurs in"], "suffers", ["suffers"]),
    ("depends_on", "service", "service", ["depends on"], "is_dependency_of", ["is a dependency of"]),
    ("owned_by", "service", "team", ["is owned by"], "owns", ["owns"]),
    ("triggers", "symptom", "alert", ["triggers"], "triggered_by", ["is triggered by"]),
    ("routes_to", "alert", "team", ["routes to"], "receives_alert", ["receives the alert"]),
    ("escalates_to", "team", "team", ["escalates to"], "receives_escalations_from", ["receives escalations from"]),
]


def _relations(spec: list) -> list[dict]:
    return [{"name": n, "head_type": h, "tail_type": t, "phrasings": p, "inverse": inv, "inverse_phrasings": ip}
            for n, h, t, p, inv, ip in spec]


def devops_kg(seed: int = 0) -> KnowledgeGraph:
    rng = Random(seed)
    ents = ([(n, "root_cause") for n in ROOT_CAUSES] + [(n, "error") for n in ERRORS]
            + [(n, "symptom") for n in SYMPTOMS] + [(n, "fix") for n in FIXES]
            + [(n, "tool") for n in TOOLS] + [(n, "team") for n in TEAMS]
            + [(n, "service") for n in SERVICES] + [(n, "alert") for n in ALERTS])
    edges = []
    # root cause i causes error i (a bijection, so both directions are functional)
    edges += [[ROOT_CAUSES[i], "causes", ERRORS[i]] for i in range(len(ERRORS))]
    edges += [[ROOT_CAUSES[i], "fixed_by", FIXES[i]] for i in range(len(FIXES))]
    # every symptom results from exactly one error
    for i, s in enumerate(SYMPTOMS):
        edges.append([ERRORS[i % len(ERRORS)] if i < len(ERRORS) else rng.choice(ERRORS), "leads_to", s])
    edges += [[s, "detected_by", rng.choice(TOOLS)] for s in SYMPTOMS]
    edges += [[f, "requires", rng.choice(TOOLS)] for f in FIXES]
    edges += [[t, "maintained_by", TEAMS[i % len(TEAMS)]] for i, t in enumerate(TOOLS)]
    edges += [[e, "occurs_in", rng.choice(SERVICES)] for e in ERRORS]
    # dependencies point to earlier services only: an acyclic graph like a real call graph
    edges += [[s, "depends_on", SERVICES[rng.randrange(0, i)]] for i, s in enumerate(SERVICES) if i > 0]
    edges += [[s, "owned_by", TEAMS[i % len(TEAMS)]] for i, s in enumerate(SERVICES)]
    # one alert per symptom: both directions functional
    edges += [[s, "triggers", ALERTS[i]] for i, s in enumerate(SYMPTOMS)]
    edges += [[a, "routes_to", rng.choice(TEAMS)] for a in ALERTS]
    order = TEAMS[:]
    rng.shuffle(order)
    edges += [[order[i], "escalates_to", order[(i + 1) % len(order)]] for i in range(len(order))]
    data = {"name": "devops", "entities": [{"name": n, "type": t} for n, t in ents],
            "relations": _relations(DEVOPS_RELATIONS), "edges": edges}
    return kg_from_json(data, "<builtin:devops>")


_SYL = ["ka", "zor", "vel", "thi", "mar", "quo", "lun", "dra", "bex", "sil", "nor", "yth", "pel", "gru", "xan",
        "ori", "tes", "wyn", "cal", "dun", "ferr", "ish", "jol", "kev", "myr", "oss", "rhu", "tav", "ulm", "zeb"]

WORLD_RELATIONS = [
    ("mentored_by", "person", "person", ["was mentored by"], "mentored", ["mentored"]),
    ("lives_in", "person", "city", ["lives in"], "is_home_to", ["is home to"]),
    ("located_in", "city", "region", ["lies in"], "contains", ["contains the city"]),
    ("ruled_by", "region", "person", ["is ruled by"], "rules", ["rules"]),
    ("member_of", "person", "guild", ["belongs to"], "has_member", ["counts as a member"]),
    ("founded_in", "guild", "city", ["was founded in"], "birthplace_of", ["is the birthplace of"]),
    ("forged_by", "artifact", "person", ["was forged by"], "forged", ["forged"]),
    ("kept_in", "artifact", "city", ["is kept in"], "keeps", ["keeps"]),
]


def _names(rng: Random, n: int, parts: int, suffix: str = "", used: set | None = None) -> list[str]:
    used = used if used is not None else set()
    out = []
    while len(out) < n:
        name = "".join(rng.choice(_SYL) for _ in range(parts)).capitalize() + suffix
        if name not in used:
            used.add(name)
            out.append(name)
    return out


def world_kg(seed: int = 0) -> KnowledgeGraph:
    rng = Random(1000 + seed)
    used: set[str] = set()
    people = _names(rng, 60, 3, used=used)
    cities = _names(rng, 18, 2, " City", used)
    regions = _names(rng, 6, 2, " March", used)
    guilds = _names(rng, 8, 2, " Guild", used)
    artifacts = ["the " + n for n in _names(rng, 24, 2, " Blade", used)]
    ents = ([(n, "person") for n in people] + [(n, "city") for n in cities] + [(n, "region") for n in regions]
            + [(n, "guild") for n in guilds] + [(n, "artifact") for n in artifacts])
    edges = []
    # mentorship is a forest pointing to older people, so no one mentors themself through a cycle
    for i, p in enumerate(people[1:], start=1):
        edges.append([p, "mentored_by", people[rng.randrange(max(0, i - 8), i)]])
    edges += [[p, "lives_in", rng.choice(cities)] for p in people]
    edges += [[c, "located_in", regions[i % len(regions)]] for i, c in enumerate(cities)]
    rulers = rng.sample(people, len(regions))
    edges += [[r, "ruled_by", rulers[i]] for i, r in enumerate(regions)]
    edges += [[p, "member_of", rng.choice(guilds)] for p in people]
    edges += [[g, "founded_in", cities[i % len(cities)]] for i, g in enumerate(guilds)]
    smiths = rng.sample(people, len(artifacts))
    edges += [[a, "forged_by", smiths[i]] for i, a in enumerate(artifacts)]
    edges += [[a, "kept_in", rng.choice(cities)] for a in artifacts]
    data = {"name": "world", "entities": [{"name": n, "type": t} for n, t in ents],
            "relations": _relations(WORLD_RELATIONS), "edges": edges}
    return kg_from_json(data, "<builtin:world>")


BUILTIN = {"devops": devops_kg, "world": world_kg}
