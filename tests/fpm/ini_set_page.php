<?php
// What ini_set() says about tsdb.path in the test pool (false when the pool fixed it).
echo var_export(ini_set('tsdb.path', '/elsewhere.jsonl'), true);
