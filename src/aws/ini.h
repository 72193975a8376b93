/*
 * ini.h - reading the AWS shared credentials / config files (INI).
 *
 * The format as the SDKs read it: "[section]" lines (surrounding blanks
 * ignored, inner blanks around the name trimmed); "key = value" lines with
 * key and value trimmed; full-line comments starting with '#' or ';'; a
 * line that starts with whitespace continues the previous key (nested
 * settings such as "s3 =" blocks) and is skipped here; CRLF line ends and a
 * UTF-8 byte order mark are accepted. There are no inline comments: "a = b
 * # c" is the value "b # c", as botocore reads it. A section or key that
 * appears again adds to / overrides the earlier one (the last value wins).
 * Keys are matched exactly (the SDKs' keys are lower-case).
 */
#ifndef BL_AWS_INI_H
#define BL_AWS_INI_H

#include "core/common.h"

/* Finds `key` in section `section` of text[0..len). Returns 1 and sets
 * *value (a view into text, trimmed) when found, 0 when the key is not in
 * the section, BL_DECLINED when no such section exists. */
int bl_aws_ini_get(const char *text, size_t len, const char *section, const char *key,
                   bl_str_t *value);

#endif
