// One-off init of the reference deployment's replica set (deploy/compose.yaml, mongo-init):
// initiate rs0 over mongo1..3 once, wait for a primary, create the registry's user
// (readWrite on der_registry) and a backup user (mongodump --oplog / mongorestore).
// Safe to run again: every step checks first.
const members = ["mongo1:27017", "mongo2:27017", "mongo3:27017"];

function initiated() {
  try {
    rs.status();
    return true;
  } catch (error) {
    if (error.codeName === "NotYetInitialized") return false;
    throw error;
  }
}

if (!initiated()) {
  // mongo1 is preferred as the first primary, so this script usually writes through it
  rs.initiate({ _id: "rs0", members: members.map((host, i) => ({ _id: i, host: host, priority: i === 0 ? 2 : 1 })) });
  print("replica set rs0 initiated");
}

let hello = db.hello();
for (let waited = 0; !hello.primary; waited++) {
  if (waited > 120) throw new Error("no primary after 120 s");
  sleep(1000);
  hello = db.hello();
}
// users are written on the primary (after a failover, not necessarily mongo1)
let primary = db.getMongo();
if (!hello.isWritablePrimary) {
  primary = new Mongo(hello.primary);
  primary.getDB("admin").auth("root", process.env.MONGO_ROOT_PASSWORD);
}

const majority = { w: "majority", wtimeout: 30000 };

function ensureUser(database, name, password, roles) {
  const target = primary.getDB(database);
  if (!password) throw new Error(`no password for ${name}: set it in deploy/.env`);
  if (target.getUser(name)) {
    target.updateUser(name, { pwd: password, roles: roles }, majority);
  } else {
    target.createUser({ user: name, pwd: password, roles: roles }, majority);
  }
  print(`user ${name} on ${database}: ${JSON.stringify(roles)}`);
}

ensureUser("der_registry", "der_registry", process.env.MONGO_APP_PASSWORD,
  [{ role: "readWrite", db: "der_registry" }]);
ensureUser("admin", "der_backup", process.env.MONGO_BACKUP_PASSWORD,
  [{ role: "backup", db: "admin" }, { role: "restore", db: "admin" }]);
