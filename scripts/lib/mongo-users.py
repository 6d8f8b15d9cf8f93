"""TRD's users on a MongoDB server that requires authentication (started by services.sh).

usage: mongo-users.py PORT ADMIN_CREDENTIALS SERVICE_CREDENTIALS

The administrator (role root) is created through MongoDB's localhost exception, which lets a
loopback client create the first user of a server that has none: a new data directory, or one
from a TRD that ran without authentication (mongod and secantusd-rs alike). The administrator
then creates TRD's user, or sets its password and roles when it exists, so that a removed
credentials file means a new password. Passwords are read from the files, never printed.
"""

import sys

from pymongo import MongoClient
from pymongo.errors import OperationFailure

UNAUTHORIZED = 13
AUTHENTICATION_FAILED = 18

# Any database: the database is a setting, and the tests make and drop one per test.
SERVICE_ROLES = [
    {"role": "readWriteAnyDatabase", "db": "admin"},
    {"role": "dbAdminAnyDatabase", "db": "admin"},
]


def read_credentials(path):
    with open(path) as f:
        fields = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    return fields["user"], fields["password"]


def connect(port, user=None, password=None):
    return MongoClient(
        host="127.0.0.1",
        port=port,
        username=user,
        password=password,
        authSource="admin",
        directConnection=True,
        serverSelectionTimeoutMS=10000,
    )


def administrator(port, path):
    user, password = read_credentials(path)
    admin = connect(port, user, password)
    try:
        admin.admin.command("ping")
        return admin
    except OperationFailure as e:
        if e.code != AUTHENTICATION_FAILED:
            raise
    try:
        connect(port).admin.command("createUser", user, pwd=password, roles=["root"])
    except OperationFailure as e:
        if e.code != UNAUTHORIZED:
            raise
        sys.exit(
            f"MongoDB on port {port} has users, but not the administrator in {path}: restore "
            "that file, or start the server once without --auth and drop the users of `admin`"
        )
    return connect(port, user, password)


def main(port, admin_path, service_path):
    admin = administrator(port, admin_path).admin
    user, password = read_credentials(service_path)
    if admin.command("usersInfo", user)["users"]:
        admin.command("updateUser", user, pwd=password, roles=SERVICE_ROLES)
    else:
        admin.command("createUser", user, pwd=password, roles=SERVICE_ROLES)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
