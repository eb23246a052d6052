CREATE TABLE point_info (
  system_id INTEGER NOT NULL,
  id INTEGER NOT NULL,
  vendor TEXT NOT NULL,
  name TEXT,
  PRIMARY KEY (system_id, id)
);
CREATE TABLE snap_point_info AS SELECT * FROM point_info;
