"""load_config: packaged defaults, a TOML file over them, environment overrides, validation."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from config import (
    AppConfig,
    Config,
    ConfigError,
    LimitsConfig,
    LoginConfig,
    MessagesConfig,
    QueueConfig,
    ServerConfig,
    SignalingConfig,
    TenantConfig,
    UserConfig,
    load_config,
)

SECRET = "Zebra-Quokka-771-not-for-logs"

OTHER_TENANT = """
[login]
default_domain = "acme.org"

[tenants."acme.org".users.erin]
dn = "Erin Acme"
num = "201"
password = "erin-pw"
licences = ["messages"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchboard.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), env=env or {})


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return str(caught.value)


def env_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env=env)
    return str(caught.value)


# --- defaults -----------------------------------------------------------------------------


def test_defaults_equal_the_dataclass_defaults() -> None:
    config = load_config(None, env={})
    assert config.server == ServerConfig()
    assert config.login == LoginConfig()
    assert config.limits == LimitsConfig()
    assert config.signaling == SignalingConfig()
    assert config.messages == MessagesConfig()


def test_default_tenant_is_the_demo_tenant() -> None:
    config = load_config(None, env={})
    assert [tenant.domain for tenant in config.tenants] == ["example.com"]
    tenant = config.tenant("example.com")
    assert tenant is not None
    assert tenant.demo is True
    assert tenant.apps == ()
    assert tenant.users == (
        UserConfig("alice", "Alice Example", "101", "alice-demo", frozenset({"messages"})),
        UserConfig("bob", "Bob Example", "102", "bob-demo", frozenset({"messages"})),
        UserConfig("carol", "Carol Example", "103", "carol-demo", frozenset()),
        UserConfig("dave", "Dave Example", "104", "dave-demo", frozenset()),
    )
    assert tenant.queues == (QueueConfig("support", "Example support", ("alice", "bob")),)
    assert config.tenant(config.login.default_domain) is tenant
    assert config.tenant("other.org") is None


def test_config_works_with_dataclasses_replace() -> None:
    config = load_config(None, env={})
    faster = replace(config, limits=replace(config.limits, rate=1000.0))
    assert faster.limits.rate == 1000.0
    assert config.limits.rate == 20.0


# --- the user's file ----------------------------------------------------------------------


def test_file_overrides_one_key_and_keeps_the_others(tmp_path: Path) -> None:
    config = load(tmp_path, "[server]\nport = 9000\n")
    assert config.server == replace(ServerConfig(), port=9000)
    assert config.limits == LimitsConfig()
    assert config.tenants == load_config(None, env={}).tenants


def test_file_values_use_units(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [limits]
        max_frame = "1M"
        idle_timeout = "2m"
        [signaling]
        ring_timeout = 45
        typing_ttl = 1.5
        hold_bytes = 0
        [server]
        data_dir = "/var/lib/switchboard"
        """,
    )
    assert config.limits.max_frame == 1024 * 1024
    assert config.limits.idle_timeout == 120.0
    assert config.signaling.ring_timeout == 45.0
    assert config.signaling.typing_ttl == 1.5
    assert config.signaling.hold_bytes == 0
    assert config.server.data_dir == Path("/var/lib/switchboard")


def test_file_tenants_replace_the_demo_tenant(tmp_path: Path) -> None:
    config = load(tmp_path, OTHER_TENANT)
    assert [tenant.domain for tenant in config.tenants] == ["acme.org"]
    assert config.tenant("example.com") is None
    (tenant,) = config.tenants
    assert tenant.demo is False
    assert tenant.users == (
        UserConfig("erin", "Erin Acme", "201", "erin-pw", frozenset({"messages"})),
    )


def test_file_tenants_with_the_demo_domain_replace_its_users(tmp_path: Path) -> None:
    config = load(tmp_path, '[tenants."example.com".users.zoe]\npassword = "zoe-pw"\n')
    (tenant,) = config.tenants
    assert tenant.demo is False
    assert [user.sip for user in tenant.users] == ["zoe"]
    assert tenant.users[0] == UserConfig("zoe", "zoe", "", "zoe-pw")


def test_empty_tenants_table_leaves_no_tenant(tmp_path: Path) -> None:
    assert load(tmp_path, "tenants = {}\n").tenants == ()


def test_apps(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        OTHER_TENANT
        + """
        [tenants."acme.org".apps.helpdesk-bot]
        dn = "Helpdesk bot"
        password = "bot-pw"
        act_for = ["*"]
        apis = ["PbxSignal"]

        [tenants."acme.org".apps.console]
        password = "console-pw"
        act_for = ["erin"]
        """,
    )
    (tenant,) = config.tenants
    assert tenant.apps == (
        AppConfig("helpdesk-bot", "bot-pw", "Helpdesk bot", frozenset({"*"}), ("PbxSignal",)),
        AppConfig("console", "console-pw", "", frozenset({"erin"}), ()),
    )


def test_an_app_objects_number_and_licences(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        OTHER_TENANT
        + """
        [tenants."acme.org".apps.echo]
        password = "echo-pw"
        apis = ["PbxSignal"]
        num = "250"
        licences = ["messages"]
        """,
    )
    (app,) = config.tenants[0].apps
    assert (app.num, app.licences) == ("250", frozenset({"messages"}))


def test_an_app_objects_number_must_be_digits_and_nobody_elses(tmp_path: Path) -> None:
    app = '[tenants."acme.org".apps.echo]\npassword = "echo-pw"\n'
    text = error(tmp_path, OTHER_TENANT + app + 'num = "2x"\n')
    assert text.startswith('tenants."acme.org".apps.echo.num: expected digits only')
    text = error(tmp_path, OTHER_TENANT + app + 'num = "201"\n')
    assert text == 'tenants."acme.org".apps.echo.num: "201" is already the number of "erin"'
    two = app + 'num = "250"\n[tenants."acme.org".apps.other]\npassword = "x"\nnum = "250"\n'
    assert 'is already the number of "echo"' in error(tmp_path, OTHER_TENANT + two)


def test_queues_and_max_chats(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        OTHER_TENANT
        + """
        max_chats = 5

        [tenants."acme.org".users.finn]
        password = "finn-pw"

        [tenants."acme.org".queues.help]
        dn = "Help desk"
        agents = ["erin", "finn", "erin"]

        [tenants."acme.org".queues.empty]
        """,
    )
    (tenant,) = config.tenants
    assert [(user.sip, user.max_chats) for user in tenant.users] == [("erin", 5), ("finn", 3)]
    assert tenant.queues == (
        QueueConfig("help", "Help desk", ("erin", "finn")),  # an agent named twice: once
        QueueConfig("empty", "empty", ()),
    )


def test_default_domain_must_name_a_tenant(tmp_path: Path) -> None:
    message = error(tmp_path, OTHER_TENANT.replace('default_domain = "acme.org"', ""))
    assert message == 'login.default_domain: "example.com" is not a configured tenant ("acme.org")'


# --- environment --------------------------------------------------------------------------


def test_env_overrides_port_size_and_duration() -> None:
    config = load_config(
        None,
        env={
            "SWITCHBOARD_SERVER_PORT": "9000",
            "SWITCHBOARD_LIMITS_MAX_FRAME": "512K",
            "SWITCHBOARD_SIGNALING_RING_TIMEOUT": "30s",
            "SWITCHBOARD_LIMITS_RATE": "2.5",
            "SWITCHBOARD_SERVER_HOST": "0.0.0.0",
        },
    )
    assert config.server.port == 9000
    assert config.server.host == "0.0.0.0"
    assert config.limits.max_frame == 512 * 1024
    assert config.limits.rate == 2.5
    assert config.signaling.ring_timeout == 30.0


def test_env_overrides_the_file(tmp_path: Path) -> None:
    config = load(tmp_path, "[server]\nport = 9000\n", env={"SWITCHBOARD_SERVER_PORT": "9001"})
    assert config.server.port == 9001


def test_env_unknown_key_in_known_section_is_an_error() -> None:
    message = env_error({"SWITCHBOARD_LIMITS_MAX_FRAMES": "1K"})
    assert message.startswith("limits.max_frames: unknown key")
    assert "SWITCHBOARD_LIMITS_MAX_FRAMES" in message


def test_env_outside_the_known_sections_is_ignored() -> None:
    config = load_config(
        None,
        env={
            "SWITCHBOARD_REQUIRE_SERVICES": "1",
            "SWITCHBOARD_TENANTS_EXAMPLE": "x",
            "SWITCHBOARD": "x",
            "PATH": "/usr/bin",
            "switchboard_server_port": "1",
        },
    )
    assert config == load_config(None, env={})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "SWITCHBOARD_SERVER_PORT",
            "abc",
            'server.port: expected an integer, got "abc" '
            "(from environment variable SWITCHBOARD_SERVER_PORT)",
        ),
        (
            "SWITCHBOARD_SERVER_PORT",
            "70000",
            "server.port: expected a port number 0..65535, got 70000 "
            "(from environment variable SWITCHBOARD_SERVER_PORT)",
        ),
        (
            "SWITCHBOARD_LIMITS_MAX_FRAME",
            "big",
            'limits.max_frame: expected a size like "256K", got "big" '
            "(from environment variable SWITCHBOARD_LIMITS_MAX_FRAME)",
        ),
        (
            "SWITCHBOARD_LOGIN_TIMEOUT",
            "0s",
            'login.timeout: must be greater than 0, got "0s" '
            "(from environment variable SWITCHBOARD_LOGIN_TIMEOUT)",
        ),
        (
            "SWITCHBOARD_LIMITS_RATE",
            "fast",
            'limits.rate: expected a number, got "fast" '
            "(from environment variable SWITCHBOARD_LIMITS_RATE)",
        ),
    ],
)
def test_env_bad_values_name_key_and_variable(name: str, value: str, message: str) -> None:
    assert env_error({name: value}) == message


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", 'server.prot: unknown key (did you mean "port"?)'),
        ("[limits]\nwhatever = 1\n", "limits.whatever: unknown key"),
        ("[srever]\nport = 1\n", 'srever: unknown key (did you mean "server"?)'),
        (
            '[tenants."a.org"]\ndemo = false\nusers = {}\ncolour = "red"\n'
            '[login]\ndefault_domain = "a.org"\n',
            'tenants."a.org".colour: unknown key',
        ),
        (
            '[tenants."a.org".users.al]\npassword = "pw"\nlicense = ["messages"]\n'
            '[login]\ndefault_domain = "a.org"\n',
            'tenants."a.org".users.al.license: unknown key (did you mean "licences"?)',
        ),
    ],
)
def test_unknown_keys_are_errors(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[limits]\nmax_frame = "abc"\n',
            'limits.max_frame: expected a size like "256K", got "abc"',
        ),
        ("[limits]\nmax_frame = 1.5\n", 'limits.max_frame: expected a size like "256K", got 1.5'),
        ("[limits]\nmax_message = 0\n", "limits.max_message: must be greater than 0, got 0"),
        (
            '[signaling]\nring_timeout = "soon"\n',
            'signaling.ring_timeout: expected a duration like "30s", got "soon"',
        ),
        (
            "[signaling]\nring_timeout = true\n",
            'signaling.ring_timeout: expected a duration like "30s", got true',
        ),
        (
            '[signaling]\ntyping_ttl = "-1s"\n',
            'signaling.typing_ttl: a duration must not be negative, got "-1s"',
        ),
        (
            "[signaling]\nring_timeout = 0\n",
            "signaling.ring_timeout: must be greater than 0, got 0",
        ),
        ('[server]\nport = "9000"\n', 'server.port: expected an integer, got "9000"'),
        ("[server]\nport = -1\n", "server.port: must not be negative, got -1"),
        ('[server]\nhost = ""\n', "server.host: must not be empty"),
        ("[limits]\nburst = 0\n", "limits.burst: must be greater than 0, got 0"),
        ("[limits]\nrate = 0\n", "limits.rate: must be greater than 0, got 0"),
        ("server = 5\n", "server: expected a table, got an integer"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


def tenant_file(users: str, apps: str = "") -> str:
    return '[login]\ndefault_domain = "a.org"\n' + users + apps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            tenant_file(
                '[tenants."a.org".users.al]\nnum = "7"\npassword = "x"\n'
                '[tenants."a.org".users.bo]\nnum = "7"\npassword = "y"\n'
            ),
            'tenants."a.org".users.bo.num: "7" is already the number of "al"',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\ndn = "Al"\n'),
            'tenants."a.org".users.al.password: required',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\npassword = ""\n'),
            'tenants."a.org".users.al.password: must not be empty',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\nnum = "1a"\npassword = "x"\n'),
            'tenants."a.org".users.al.num: expected digits only, got "1a"',
        ),
        (
            tenant_file('[tenants."a.org".users."al@a.org"]\npassword = "x"\n'),
            'tenants."a.org".users."al@a.org": a name must not contain whitespace, "@" or ":"',
        ),
        (
            tenant_file('[tenants."a.org".users."al ice"]\npassword = "x"\n'),
            'tenants."a.org".users."al ice": a name must not contain whitespace, "@" or ":"',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\npassword = "x"\nlicences = "messages"\n'),
            'tenants."a.org".users.al.licences: expected a list of strings, got "messages"',
        ),
        (
            '[tenants."A.org".users.al]\npassword = "x"\n',
            'tenants."A.org": a domain name must be lower case without whitespace',
        ),
        (
            '[tenants.""]\n',
            'tenants."": a domain name must not be empty',
        ),
        (
            tenant_file('[tenants."a.org"]\ndemo = "yes"\n'),
            'tenants."a.org".demo: expected true or false, got "yes"',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".apps.al]\npassword = "y"\n',
            ),
            'tenants."a.org".apps.al: a user of this tenant already has this name',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".apps.bot]\nact_for = ["bo"]\npassword = "y"\n',
            ),
            'tenants."a.org".apps.bot.act_for: no user "bo" in this tenant',
        ),
        (
            tenant_file("", '[tenants."a.org".apps.bot]\napis = ["PbxSignal"]\n'),
            'tenants."a.org".apps.bot.password: required',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".queues.help]\nagent = ["al"]\n',
            ),
            'tenants."a.org".queues.help.agent: unknown key (did you mean "agents"?)',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".queues.help]\nagents = ["al", "bo"]\n',
            ),
            'tenants."a.org".queues.help.agents: no user "bo" in this tenant',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".queues.help]\nagents = "al"\n',
            ),
            'tenants."a.org".queues.help.agents: expected a list of strings, got "al"',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".queues.al]\nagents = ["al"]\n',
            ),
            'tenants."a.org".queues.al: a user or App object of this tenant has this name',
        ),
        (
            tenant_file(
                '[tenants."a.org".users.al]\npassword = "x"\n',
                '[tenants."a.org".apps.bot]\npassword = "y"\n[tenants."a.org".queues.bot]\n',
            ),
            'tenants."a.org".queues.bot: a user or App object of this tenant has this name',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\npassword = "x"\nmax_chats = 1001\n'),
            'tenants."a.org".users.al.max_chats: expected 0 to 1000, got 1001',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\npassword = "x"\nmax_chats = -1\n'),
            'tenants."a.org".users.al.max_chats: expected 0 to 1000, got -1',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\npassword = "x"\nmax_chats = "3"\n'),
            'tenants."a.org".users.al.max_chats: expected 0 to 1000, got "3"',
        ),
        (
            tenant_file('[tenants."a.org".users.al]\npassword = "x"\nmax_chats = true\n'),
            'tenants."a.org".users.al.max_chats: expected 0 to 1000, got true',
        ),
    ],
)
def test_bad_tenants_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


# --- passwords never leak -----------------------------------------------------------------


def test_password_not_in_repr() -> None:
    user = UserConfig("al", "Al", "1", SECRET)
    app = AppConfig("bot", SECRET)
    config = Config(tenants=(TenantConfig("a.org", users=(user,), apps=(app,)),))
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert "al" in repr(user)


def test_loaded_password_not_in_repr(tmp_path: Path) -> None:
    config = load(tmp_path, tenant_file(f'[tenants."a.org".users.al]\npassword = "{SECRET}"\n'))
    assert config.tenants[0].users[0].password == SECRET
    assert SECRET not in repr(config)


@pytest.mark.parametrize(
    "text",
    [
        # a malformed tenant around a valid password
        tenant_file(f'[tenants."a.org".users.al]\npassword = "{SECRET}"\nnum = "x1"\n'),
        tenant_file(f'[tenants."a.org".users.al]\npassword = "{SECRET}"\nnick = "al"\n'),
        tenant_file(f'[tenants."a.org".users."a l"]\npassword = "{SECRET}"\n'),
        tenant_file(
            f'[tenants."a.org".users.al]\npassword = "{SECRET}"\nnum = "1"\n'
            f'[tenants."a.org".users.bo]\npassword = "{SECRET}"\nnum = "1"\n'
        ),
        f'[tenants."A.org".users.al]\npassword = "{SECRET}"\n',
        f'[tenants."a.org".users.al]\npassword = "{SECRET}"\n',  # default_domain mismatch
        tenant_file(
            f'[tenants."a.org".users.al]\npassword = "{SECRET}"\n',
            f'[tenants."a.org".apps.al]\npassword = "{SECRET}"\n',
        ),
        # the password itself malformed
        tenant_file(f'[tenants."a.org".users.al]\npassword = ["{SECRET}"]\n'),
        tenant_file(f'[tenants."a.org".users.al]\npassword = {{ value = "{SECRET}" }}\n'),
        tenant_file(f'[tenants."a.org".users]\nal = "{SECRET}"\n'),
        tenant_file(f'[tenants."a.org".apps.bot]\npassword = ["{SECRET}"]\n'),
        tenant_file(f'[tenants."a.org".users.al]\npasword = "{SECRET}"\n'),
        # broken TOML around a password
        f'[tenants."a.org".users.al]\npassword = "{SECRET}\n',
        f'[tenants."a.org".users.al]\npassword = "{SECRET}" x\n',
        f'[tenants."a.org".users.al]\npassword = "{SECRET}"\npassword = "{SECRET}"\n',
    ],
)
def test_password_never_in_error_messages(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None or SECRET not in str(caught.value.__cause__)


# --- files --------------------------------------------------------------------------------


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value).startswith(f"{path}: not valid TOML")
    assert caught.value.where == str(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"{path}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert str(caught.value).startswith(f"{tmp_path}: cannot read file")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nnode = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"{path}: not a UTF-8 text file"


# --- messages -----------------------------------------------------------------------------


def test_messages_section_from_file_and_env(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        '[messages]\nurl = "ws://10.0.0.2:8080/messages/websocket"\npassword = "s3cret"\n'
        'database = "postgres://sb@db/sb"\nbatch_max = 64\n'
    )
    config = load_config(path, env={"SWITCHBOARD_MESSAGES_ENABLED": "off"})
    assert config.messages.url.startswith("ws://10.0.0.2")
    assert config.messages.batch_max == 64
    assert config.messages.enabled is False
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[messages]\nurl = "http://x"\n', "messages.url: expected a ws:// or wss:// URL"),
        ('[messages]\ndatabase = "mysql://x"\n', "messages.database: expected a sqlite://"),
        ('[messages]\nenabled = "yes"\n', "messages.enabled: expected true or false"),
        (
            '[messages]\nurl = "ws://h/messages/websocket"\n',
            "messages.password: required when messages.url is set",
        ),
        (
            '[tenants."a.org".users.group-7]\npassword = "x"\n',
            'names "group-<number>" are reserved for groups',
        ),
    ],
)
def test_messages_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        text + '\n[login]\ndefault_domain = "a.org"\n[tenants."a.org"]\n'
        if "tenants" not in text
        else text + '\n[login]\ndefault_domain = "a.org"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert expected in str(caught.value)


def test_files_url_must_be_an_http_base_url(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[files]\nurl = "https://files.example.com/"\n')
    assert load_config(good, env={}).files.url == "https://files.example.com"
    for bad in ("ftp://x", "files.example.com", "https://x/?a=1"):
        path = tmp_path / "bad.toml"
        path.write_text(f'[files]\nurl = "{bad}"\n')
        with pytest.raises(ConfigError, match=r"files\.url"):
            load_config(path, env={})


def test_tenant_admins_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "admins.toml"
    path.write_text(
        '[admin]\npassword = "top"\n[admin.tenants."example.com"]\nuser = "ops"\npassword = "p"\n'
    )
    admin = load_config(path, env={}).admin
    assert admin.password == "top"
    assert [(t.domain, t.user, t.password) for t in admin.tenants] == [("example.com", "ops", "p")]
    assert "p'" not in repr(admin)  # passwords stay out of reprs
    path.write_text('[admin.tenants."example.com"]\nuser = "ops"\n')
    with pytest.raises(ConfigError, match="password"):
        load_config(path, env={})
    path.write_text('[admin.tenants."Example.COM"]\npassword = "p"\n')
    with pytest.raises(ConfigError, match="lower case"):
        load_config(path, env={})


# --- the login throttle ---------------------------------------------------------------------


def test_login_throttle_numbers_from_file_and_env(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [login]
        throttle_failures = 3
        throttle_delay = "500ms"
        throttle_max_delay = "2m"
        throttle_window = "1h"
        throttle_account_failures = 50
        """,
        env={
            "SWITCHBOARD_LOGIN_THROTTLE_ADDRESS_FAILURES": "500",
            "SWITCHBOARD_LOGIN_THROTTLE_KEYS": "10",
        },
    )
    login = config.login
    assert (login.throttle_failures, login.throttle_delay, login.throttle_max_delay) == (
        3,
        0.5,
        120,
    )
    assert (login.throttle_window, login.throttle_account_failures) == (3600, 50)
    assert (login.throttle_address_failures, login.throttle_keys) == (500, 10)


def test_an_old_file_with_the_first_two_throttle_keys_still_loads(tmp_path: Path) -> None:
    config = load(tmp_path, '[login]\nthrottle_failures = 10\nthrottle_window = "60s"\n')
    assert (config.login.throttle_failures, config.login.throttle_window) == (10, 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[login]\nthrottle_delay = "1m"\n',
            "login.throttle_max_delay: 30s is shorter than login.throttle_delay (60s)",
        ),
        (
            '[login]\nthrottle_window = "10s"\n',
            "login.throttle_max_delay: 30s is longer than login.throttle_window (10s): "
            "a lock must end before its failures are forgotten",
        ),
        ("[login]\nthrottle_account_failures = 0\n", "login.throttle_account_failures: "),
        ('[login]\nthrottle_keys = "many"\n', "login.throttle_keys: "),
        ("[login]\nthrottle_delay = 0\n", "login.throttle_delay: "),
    ],
)
def test_login_throttle_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text).startswith(message)


def test_a_cluster_needs_a_postgres_database(tmp_path: Path) -> None:
    redis = '[cluster]\nredis = "redis://127.0.0.1:6379/0"\n'
    assert error(tmp_path, redis).startswith("cluster.database: required when cluster.redis")
    sqlite = redis + 'database = "sqlite:///var/lib/switchboard/directory.sqlite3"\n'
    assert error(tmp_path, sqlite).startswith("cluster.database: must be PostgreSQL")
    config = load(tmp_path, redis + 'database = "postgres://sb:secret@db.example/sb"\n')
    assert config.cluster.database == "postgres://sb:secret@db.example/sb"
    assert "secret" not in repr(config.cluster)
    # one process: no database needed, and one given is not used
    assert load(tmp_path, "").cluster.database == ""
