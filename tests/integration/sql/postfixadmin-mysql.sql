-- The postfixadmin tables sluice reads, for MariaDB/MySQL: mailbox as postfixadmin
-- creates it (username is the full address, maildir is relative to sluice's
-- mail_root, quota in bytes with 0 = no limit, active a tinyint), plus domain
-- and alias, enough for the example queries in auth/SQL.md. Loaded into an
-- empty database by tests/integration/lib_sql.sh (mariadb_start).

CREATE TABLE domain (
    domain      varchar(255) NOT NULL,
    description varchar(255) NOT NULL DEFAULT '',
    aliases     int(10) NOT NULL DEFAULT 0,
    mailboxes   int(10) NOT NULL DEFAULT 0,
    maxquota    bigint(20) NOT NULL DEFAULT 0,
    quota       bigint(20) NOT NULL DEFAULT 0,
    transport   varchar(255) DEFAULT NULL,
    backupmx    tinyint(1) NOT NULL DEFAULT 0,
    created     datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
    modified    datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
    active      tinyint(1) NOT NULL DEFAULT 1,
    PRIMARY KEY (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Postfix Admin - Virtual Domains';

CREATE TABLE mailbox (
    username   varchar(255) NOT NULL,
    password   varchar(255) NOT NULL DEFAULT '',
    name       varchar(255) NOT NULL DEFAULT '',
    maildir    varchar(255) NOT NULL DEFAULT '',
    quota      bigint(20) NOT NULL DEFAULT 0,
    local_part varchar(255) NOT NULL,
    domain     varchar(255) NOT NULL,
    created    datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
    modified   datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
    active     tinyint(1) NOT NULL DEFAULT 1,
    PRIMARY KEY (username),
    KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Postfix Admin - Virtual Mailboxes';

CREATE TABLE alias (
    address  varchar(255) NOT NULL,
    goto     text NOT NULL,
    domain   varchar(255) NOT NULL,
    created  datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
    modified datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
    active   tinyint(1) NOT NULL DEFAULT 1,
    PRIMARY KEY (address),
    KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Postfix Admin - Virtual Aliases';
