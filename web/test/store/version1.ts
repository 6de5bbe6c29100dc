// A version-1 database exactly as the first release of the app made it (only the stores it
// had), for the upgrade tests of each later version (groups: 2, rich rows: 4). Written out
// here rather than taken from src/store/idb.ts, so a change there cannot move the baseline.

export function openVersion1(name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("meta");
      db.createObjectStore("sessions");
      db.createObjectStore("contacts", { keyPath: "accountId" });
      db.createObjectStore("devices", { keyPath: ["accountId", "deviceId"] }).createIndex(
        "account",
        "accountId",
      );
      db.createObjectStore("messages", { keyPath: "key" }).createIndex("peer", "peer");
      db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true }).createIndex(
        "clientId",
        "clientId",
        { unique: true },
      );
      db.createObjectStore("seen", { keyPath: "id" });
    };
    req.onsuccess = () => {
      req.result.close();
      resolve();
    };
    req.onerror = () => reject(req.error);
  });
}
