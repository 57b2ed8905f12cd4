-- The postfixadmin tables sluice reads, for PostgreSQL: mailbox as postfixadmin
-- creates it (username is the full address, maildir is relative to sluice's
-- mail_root, quota in bytes with 0 = no limit, active a boolean), plus domain
-- and alias, enough for the example queries in auth/SQL.md. Loaded into an
-- empty database by tests/integration/lib_sql.sh (pg_start).

CREATE TABLE domain (
    domain      varchar(255) NOT NULL,
    description varchar(255) NOT NULL DEFAULT '',
    aliases     integer NOT NULL DEFAULT 0,
    mailboxes   integer NOT NULL DEFAULT 0,
    maxquota    bigint NOT NULL DEFAULT 0,
    quota       bigint NOT NULL DEFAULT 0,
    transport   varchar(255) DEFAULT NULL,
    backupmx    boolean NOT NULL DEFAULT false,
    created     timestamp with time zone DEFAULT now(),
    modified    timestamp with time zone DEFAULT now(),
    active      boolean NOT NULL DEFAULT true,
    CONSTRAINT domain_key PRIMARY KEY (domain)
);

CREATE TABLE mailbox (
    username   varchar(255) NOT NULL,
    password   varchar(255) NOT NULL DEFAULT '',
    name       varchar(255) NOT NULL DEFAULT '',
    maildir    varchar(255) NOT NULL DEFAULT '',
    quota      bigint NOT NULL DEFAULT 0,
    local_part varchar(255) NOT NULL,
    domain     varchar(255) NOT NULL REFERENCES domain (domain),
    created    timestamp with time zone DEFAULT now(),
    modified   timestamp with time zone DEFAULT now(),
    active     boolean NOT NULL DEFAULT true,
    CONSTRAINT mailbox_key PRIMARY KEY (username)
);
CREATE INDEX mailbox_domain_idx ON mailbox (domain);

CREATE TABLE alias (
    address  varchar(255) NOT NULL,
    goto     text NOT NULL,
    domain   varchar(255) NOT NULL REFERENCES domain (domain),
    created  timestamp with time zone DEFAULT now(),
    modified timestamp with time zone DEFAULT now(),
    active   boolean NOT NULL DEFAULT true,
    CONSTRAINT alias_key PRIMARY KEY (address)
);
CREATE INDEX alias_domain_idx ON alias (domain);
