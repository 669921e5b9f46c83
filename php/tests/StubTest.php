<?php
// The IDE stub file names exactly the functions the extension exports, with the same parameters
// (attributes such as #[\SensitiveParameter] included).

use PHPUnit\Framework\TestCase;

final class StubTest extends TestCase {
    public function test_stub_matches_extension(): void {
        $src = file_get_contents(dirname(__DIR__) . '/tsdb.stub.php');
        preg_match_all('/^function (\w+)\((.*)\): (\w+) \{\}$/m', $src, $m, PREG_SET_ORDER);
        $stubbed = [];
        foreach ($m as [, $name, $params, $ret]) {
            $stubbed[$name] = true;
            $f = new ReflectionFunction($name);
            $this->assertSame('tsdb', $f->getExtensionName(), $name);
            $got = array_map(function (ReflectionParameter $p) {
                $attributes = array_map(fn(ReflectionAttribute $a) => '#[\\' . $a->getName() . '] ', $p->getAttributes());
                $s = implode('', $attributes) . $p->getType() . ' $' . $p->getName();
                return $p->isDefaultValueAvailable() ? $s . ' = ' . var_export($p->getDefaultValue(), true) : $s;
            }, $f->getParameters());
            $this->assertSame($params, implode(', ', $got), "parameters of $name");
            $this->assertSame($ret, (string)$f->getReturnType(), "return type of $name");
        }
        $exported = (new ReflectionExtension('tsdb'))->getFunctions();
        $this->assertEqualsCanonicalizing(array_keys($exported), array_keys($stubbed));
    }
}
