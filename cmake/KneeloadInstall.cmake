# Install rules: `cmake --install BUILD [--prefix P]` (DESTDIR honoured). README, "Install as a
# service", is the user's guide; tests/deploy/deploy_test.py checks the layout.
#
#   P/bin/kneeloadd, P/bin/kneeloadctl
#   P/lib/systemd/system/kneeloadd.service   ExecStart and Documentation point into P
#   P/lib/sysusers.d/kneeload.conf           the kneeload system user
#   /etc/kneeload/kneeloadd.toml.example     always refreshed
#   /etc/kneeload/kneeloadd.toml             only if absent: an operator's config is never overwritten
#   P/share/doc/kneeload/                    README, design notes, annotated example config
#   P/share/kneeload/{prometheus,grafana}/   scrape config, alert rules, dashboards
#
# systemd directories are lib/... under the prefix, not GNUInstallDirs' LIBDIR (which is
# lib/<multiarch> on Debian): systemd searches /usr/lib and /usr/local/lib. The config lives
# in /etc/kneeload whatever the prefix, because the unit's ConfigurationDirectory= is always
# under /etc.
include(GNUInstallDirs)

install(TARGETS kneeloadd kneeloadctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The unit in the tree is written for prefix /usr. Its paths are rewritten when the install
# runs, not when CMake configures, so that `cmake --install --prefix P` (which overrides the
# configured prefix) still yields a unit whose ExecStart is the binary it just installed.
set(_unit_src ${PROJECT_SOURCE_DIR}/systemd/kneeloadd.service)
set(_unit_out ${PROJECT_BINARY_DIR}/install/kneeloadd.service)
install(CODE "
  file(READ \"${_unit_src}\" _unit)
  string(REPLACE \"/usr/bin/kneeloadd\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/kneeloadd\" _unit \"\${_unit}\")
  string(REPLACE \"/usr/share/doc/kneeload\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\" _unit \"\${_unit}\")
  file(WRITE \"${_unit_out}\" \"\${_unit}\")
")
install(FILES ${_unit_out} DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/kneeload.sysusers DESTINATION lib/sysusers.d RENAME kneeload.conf)

set(_example ${PROJECT_SOURCE_DIR}/deploy/config/kneeloadd.example.toml)
install(FILES ${_example} DESTINATION /etc/kneeload RENAME kneeloadd.toml.example)
install(CODE "
  if(EXISTS \"\$ENV{DESTDIR}/etc/kneeload/kneeloadd.toml\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}/etc/kneeload/kneeloadd.toml (the new example is kneeloadd.toml.example)\")
  else()
    file(INSTALL \"${_example}\" DESTINATION /etc/kneeload RENAME kneeloadd.toml)
  endif()
")

install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/model-conventions.md ${_example}
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES
    ${PROJECT_SOURCE_DIR}/deploy/prometheus/prometheus.yml
    ${PROJECT_SOURCE_DIR}/deploy/prometheus/rules.yml
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kneeload/prometheus)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/grafana/
  DESTINATION ${CMAKE_INSTALL_DATADIR}/kneeload/grafana)
