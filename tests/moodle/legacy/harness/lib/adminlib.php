<?php
// This file is part of the logstore_tsdb test harness (GPL v3 or later).
// Stands for Moodle's lib/adminlib.php: the admin setting classes live in ../admin.php.
require_once(__DIR__ . '/../admin.php');
