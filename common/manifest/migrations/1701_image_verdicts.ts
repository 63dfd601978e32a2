/**
 * Issue 12 item 8: the warning a source image decoded with (libjpeg's "Corrupt JPEG data", a
 * PNG CRC complaint), kept on its image row so that an image ingested despite a warning can be
 * found later. Null when the decode was clean. Version 1701 = issue 17's range, kept apart from
 * the sequence other changes take.
 *
 * @module
 */
import type { Migration } from "./migration.ts";

export const migration: Migration = {
  version: 1701,
  name: "image_decode_warning",
  up: "ALTER TABLE images ADD COLUMN decode_warning TEXT",
};
