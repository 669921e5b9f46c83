<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).
// Stands for Moodle's lib/clilib.php: the functions a plugin's CLI script uses, with Moodle's behaviour.

/**
 * Moodle's cli_get_params(): --long=value, --flag, -s short options.
 *
 * @param array $longoptions name => default
 * @param array|null $shortmapping short => long
 * @return array [options, unrecognised]
 */
function cli_get_params(array $longoptions, ?array $shortmapping = null) {
    $shortmapping = (array) $shortmapping;
    $options = [];
    $unrecognized = [];
    $args = $_SERVER['argv'] ?? [];
    array_shift($args);
    foreach ($args as $arg) {
        if (preg_match('/^--([^=]+)(=(.*))?$/s', $arg, $m)) {
            $key = $m[1];
            $value = isset($m[2]) && $m[2] !== '' ? $m[3] : true;
        } else if (preg_match('/^-([^=-]+)(=(.*))?$/s', $arg, $m)) {
            $key = $shortmapping[$m[1]] ?? null;
            if ($key === null) {
                $unrecognized[] = $arg;
                continue;
            }
            $value = isset($m[2]) && $m[2] !== '' ? $m[3] : true;
        } else {
            $unrecognized[] = $arg;
            continue;
        }
        if (!array_key_exists($key, $longoptions)) {
            $unrecognized[] = $arg;
            continue;
        }
        $options[$key] = $value;
    }
    foreach ($longoptions as $key => $default) {
        if (!array_key_exists($key, $options)) {
            $options[$key] = $default;
        }
    }
    return [$options, $unrecognized];
}

/**
 * Moodle's cli_writeln().
 *
 * @param string $text
 * @param resource $stream
 */
function cli_writeln($text, $stream = STDOUT) {
    fwrite($stream, $text . PHP_EOL);
}

/**
 * Moodle's cli_error(): message to STDERR, exit code.
 *
 * @param string $text
 * @param int $errorcode
 */
function cli_error($text, $errorcode = 1) {
    fwrite(STDERR, $text . "\n");
    exit($errorcode);
}
